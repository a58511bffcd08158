import { describe, expect, it } from "vitest";
import { ConfigError, DEPRECATED_NAMES, loadConfig, readConfig } from "../schema/config.ts";

describe("config", () => {
  it("defaults follow the reference deployment", () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      DOCKET_PORT: 8080,
      DOCKET_HOST: "127.0.0.1",
      NATS_URL: "nats://127.0.0.1:4222",
      DOCKET_DB: "./data/docket.db",
      DOCKET_MAX_BATCH: 32,
      DOCKET_CONTEXT_SIZE: 8192,
      DOCKET_GPU_MEMORY_BYTES: 50e9,
    });
    expect(c.DOCKET_MODEL).toBeUndefined();
  });

  it("the data folder and the SQLite file follow each other, so one setting separates two local stacks", () => {
    expect(loadConfig({})).toMatchObject({ DOCKET_DATA_DIR: "./data", DOCKET_DB: "./data/docket.db" });
    expect(loadConfig({ DOCKET_DB: "/srv/a/docket.db" })).toMatchObject({
      DOCKET_DATA_DIR: "/srv/a",
      DOCKET_DB: "/srv/a/docket.db",
    });
    expect(loadConfig({ DOCKET_DATA_DIR: "/srv/b/" })).toMatchObject({
      DOCKET_DATA_DIR: "/srv/b/",
      DOCKET_DB: "/srv/b/docket.db",
    });
    expect(loadConfig({ DOCKET_DATA_DIR: "/srv/c", DOCKET_DB: "/db/x.db" })).toMatchObject({
      DOCKET_DATA_DIR: "/srv/c",
      DOCKET_DB: "/db/x.db",
    });
  });

  it("reads sizes with units", () => {
    expect(loadConfig({ DOCKET_GPU_MEMORY_BYTES: "48GiB" }).DOCKET_GPU_MEMORY_BYTES).toBe(48 * 1024 ** 3);
    expect(loadConfig({ DOCKET_INLINE_LIMIT_BYTES: "512kb" }).DOCKET_INLINE_LIMIT_BYTES).toBe(512_000);
  });

  it("DOCKET_GPU_LAYERS is auto or a whole number of layers", () => {
    expect(loadConfig({}).DOCKET_GPU_LAYERS).toBe("auto");
    expect(loadConfig({ DOCKET_GPU_LAYERS: "40" }).DOCKET_GPU_LAYERS).toBe(40);
    expect(loadConfig({ DOCKET_GPU_LAYERS: "AUTO" }).DOCKET_GPU_LAYERS).toBe("auto");
    expect(() => loadConfig({ DOCKET_GPU_LAYERS: "most" })).toThrow(/DOCKET_GPU_LAYERS: not a layer count/);
    expect(() => loadConfig({ DOCKET_GPU_LAYERS: "-1" })).toThrow(/DOCKET_GPU_LAYERS/);
  });

  it("an empty DOCKET_MODEL means the demo model", () => {
    expect(loadConfig({ DOCKET_MODEL: "" }).DOCKET_MODEL).toBeUndefined();
  });

  it("a bad value is refused with the variable's name", () => {
    expect(() => loadConfig({ DOCKET_PORT: "eighty" })).toThrow(ConfigError);
    expect(() => loadConfig({ DOCKET_PORT: "eighty" })).toThrow(/DOCKET_PORT/);
    expect(() => loadConfig({ DOCKET_GPU_MEMORY_BYTES: "lots" })).toThrow(/DOCKET_GPU_MEMORY_BYTES: not a size/);
    expect(() => loadConfig({ DOCKET_GPU_MEMORY: "lots" })).toThrow(
      /DOCKET_GPU_MEMORY_BYTES \(set as DOCKET_GPU_MEMORY\): not a size/,
    );
  });

  it("an old name without its unit still works, with one warning naming old and new", () => {
    const { config, warnings } = readConfig({ DOCKET_ACK_WAIT: "5", DOCKET_MAX_DOCUMENT: "1MiB" });
    expect(config.DOCKET_ACK_WAIT_SECONDS).toBe(5);
    expect(config.DOCKET_MAX_DOCUMENT_BYTES).toBe(1024 ** 2);
    expect(warnings).toEqual([
      "DOCKET_ACK_WAIT is deprecated: rename it DOCKET_ACK_WAIT_SECONDS (same value)",
      "DOCKET_MAX_DOCUMENT is deprecated: rename it DOCKET_MAX_DOCUMENT_BYTES (same value)",
    ]);
    expect(loadConfig({ DOCKET_CHAT_TIMEOUT: "9" }).DOCKET_CHAT_TIMEOUT_SECONDS).toBe(9);
  });

  it("the new name wins over the old one, and the old one is reported as ignored", () => {
    const { config, warnings } = readConfig({ DOCKET_GPU_MEMORY: "1GB", DOCKET_GPU_MEMORY_BYTES: "2GB" });
    expect(config.DOCKET_GPU_MEMORY_BYTES).toBe(2e9);
    expect(warnings).toEqual(["DOCKET_GPU_MEMORY is deprecated and ignored: DOCKET_GPU_MEMORY_BYTES is set"]);
  });

  it("current names give no warning, and every deprecated name maps to a variable that exists", () => {
    expect(readConfig({ DOCKET_ACK_WAIT_SECONDS: "5" }).warnings).toEqual([]);
    for (const name of Object.values(DEPRECATED_NAMES)) expect(loadConfig({})).toHaveProperty(name);
  });
});
