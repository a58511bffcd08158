import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../schema/config.ts";

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
      DOCKET_GPU_MEMORY: 50e9,
    });
    expect(c.DOCKET_MODEL).toBeUndefined();
  });

  it("reads sizes with units", () => {
    expect(loadConfig({ DOCKET_GPU_MEMORY: "48GiB" }).DOCKET_GPU_MEMORY).toBe(48 * 1024 ** 3);
    expect(loadConfig({ DOCKET_INLINE_LIMIT: "512kb" }).DOCKET_INLINE_LIMIT).toBe(512_000);
  });

  it("an empty DOCKET_MODEL means the demo model", () => {
    expect(loadConfig({ DOCKET_MODEL: "" }).DOCKET_MODEL).toBeUndefined();
  });

  it("a bad value is refused with the variable's name", () => {
    expect(() => loadConfig({ DOCKET_PORT: "eighty" })).toThrow(ConfigError);
    expect(() => loadConfig({ DOCKET_PORT: "eighty" })).toThrow(/DOCKET_PORT/);
    expect(() => loadConfig({ DOCKET_GPU_MEMORY: "lots" })).toThrow(/DOCKET_GPU_MEMORY: not a size/);
  });
});
