import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, ConfigSchema, loadConfig, readConfig } from "../schema/config.ts";
import { FILE_KEYS, parseConfigFile } from "../schema/config-file.ts";
import { qwen3NextHeader } from "../tools/model/qwen3next-header.ts";
import { PreflightError, preflight } from "../tools/preflight.ts";
import { quantizationMatches, withQuantizationTag } from "../worker/model.ts";

/** The deployment plan's service, as the plan writes it. */
const PLAN = `service: {name: 'LLM-Service', port: 8080, workers: 4, max_batch_size: 32}
model: {path: '/models/qwen3-next-80b', quantization: '4bit', gpu_memory: 50GB, context_window: 8192}
`;

let dir: string;
const file = (name: string, text: string) => writeFile(join(dir, name), text).then(() => join(dir, name));
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "docket-config-file-"));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe("docket.yaml", () => {
  it("maps each key of the plan's file onto docket's settings", async () => {
    const path = await file("plan.yaml", PLAN);
    const { config, file: read } = readConfig({}, { file: path });
    expect(read).toBe(path);
    expect(config).toMatchObject({
      DOCKET_SERVICE_NAME: "LLM-Service",
      DOCKET_PORT: 8080,
      DOCKET_WORKERS: 4,
      DOCKET_MAX_BATCH: 32,
      DOCKET_MODEL: "/models/qwen3-next-80b",
      DOCKET_QUANTIZATION: "4bit",
      DOCKET_GPU_MEMORY_BYTES: 50e9,
      DOCKET_CONTEXT_SIZE: 8192,
    });
    // every key maps to a variable the schema has
    for (const name of Object.values(FILE_KEYS)) expect(ConfigSchema.shape).toHaveProperty(name);
  });

  it("deploy/docket.yaml, the reference host's file, reads", () => {
    const config = loadConfig({}, { file: resolve(import.meta.dirname, "../deploy/docket.yaml") });
    expect(config).toMatchObject({ DOCKET_WORKERS: 1, DOCKET_QUANTIZATION: "4bit", DOCKET_GPU_MEMORY_BYTES: 50e9 });
  });

  it("a variable in the environment wins over the file, the deprecated name included", async () => {
    const path = await file("plan.yaml", PLAN);
    const config = loadConfig({ DOCKET_CONFIG: path, DOCKET_PORT: "9000", DOCKET_GPU_MEMORY: "80GB" });
    expect(config.DOCKET_PORT).toBe(9000);
    expect(config.DOCKET_GPU_MEMORY_BYTES).toBe(80e9);
    expect(config.DOCKET_WORKERS).toBe(4);
    // an empty variable is unset: the file's value stands
    expect(loadConfig({ DOCKET_CONFIG: path, DOCKET_MODEL: "" }).DOCKET_MODEL).toBe("/models/qwen3-next-80b");
  });

  it("an environment without a file keeps its defaults; ./docket.yaml is read only from the working directory", async () => {
    expect(loadConfig({})).toMatchObject({ DOCKET_WORKERS: 1, DOCKET_SERVICE_NAME: "docket", DOCKET_PORT: 8080 });
    const cwd = process.cwd();
    const here = join(dir, "cwd");
    await mkdir(here, { recursive: true });
    await writeFile(join(here, "docket.yaml"), "service:\n  port: 8181\n");
    process.chdir(here);
    try {
      expect(readConfig(process.env)).toMatchObject({ file: "docket.yaml", config: { DOCKET_PORT: 8181 } });
      expect(readConfig(process.env, { file: false }).config.DOCKET_PORT).toBe(8080);
    } finally {
      process.chdir(cwd);
    }
  });

  it("refuses unknown keys and sections, naming the known ones", () => {
    expect(() => parseConfigFile("service: {replicas: 3}", "x.yaml")).toThrow(
      /x\.yaml: unknown key service\.replicas \(known keys: service\.name/,
    );
    expect(() => parseConfigFile("database: {path: x}", "x.yaml")).toThrow(/unknown section database/);
    expect(() => parseConfigFile("service: 8080", "x.yaml")).toThrow(/service must be a mapping/);
    expect(() => parseConfigFile("model: {path: [a, b]}", "x.yaml")).toThrow(/model\.path needs a value/);
    expect(() => parseConfigFile("service: {port: 1}\nservice: {port: 2}", "x.yaml")).toThrow(/not valid YAML/);
    expect(() => parseConfigFile("service: {port: 1", "x.yaml")).toThrow(/x\.yaml: not valid YAML/);
  });

  it("refuses impossible values, naming the key in the file and its variable", async () => {
    const bad = await file("bad.yaml", "service: {workers: 0}\nmodel: {gpu_memory: lots, quantization: 4 bits please}\n");
    const err = (() => {
      try {
        loadConfig({}, { file: bad });
      } catch (e) {
        return e as Error;
      }
    })();
    expect(err).toBeInstanceOf(ConfigError);
    expect(err?.message).toContain(`service.workers in ${bad} (DOCKET_WORKERS): Too small`);
    expect(err?.message).toContain(`model.gpu_memory in ${bad} (DOCKET_GPU_MEMORY_BYTES): not a size: "lots"`);
    expect(err?.message).toContain(`model.quantization in ${bad} (DOCKET_QUANTIZATION): not a quantization`);
    expect(() => loadConfig({ DOCKET_CONFIG: join(dir, "missing.yaml") })).toThrow(/cannot read the config file/);
  });
});

describe("model.quantization", () => {
  it("gives an hf:user/repo URI without a tag the quantization's tag, and tells 4-bit types from others", () => {
    expect(withQuantizationTag("hf:unsloth/Qwen3-Next-80B-A3B-Instruct-GGUF", "4bit")).toBe(
      "hf:unsloth/Qwen3-Next-80B-A3B-Instruct-GGUF:Q4_K_M",
    );
    expect(withQuantizationTag("hf:acme/model-GGUF", "iq4_xs")).toBe("hf:acme/model-GGUF:IQ4_XS");
    expect(withQuantizationTag("hf:acme/model-GGUF:Q8_0", "4bit")).toBe("hf:acme/model-GGUF:Q8_0");
    expect(withQuantizationTag("hf:acme/model-GGUF/file.gguf", "4bit")).toBe("hf:acme/model-GGUF/file.gguf");
    for (const type of ["Q4_K_M", "Q4_K_S", "IQ4_NL", "IQ4_XS", "MXFP4_MOE", "Q4_0"])
      expect(quantizationMatches(type, "4bit")).toBe(true);
    for (const type of ["Q8_0", "F16", "Q5_K_M", "IQ3_XXS"]) expect(quantizationMatches(type, "4-bit")).toBe(false);
    expect(quantizationMatches("Q4_K_M", "q4_k_m")).toBe(true);
    expect(quantizationMatches("Q4_K_M", "IQ4_XS")).toBe(false);
  });
});

describe("npm start's check of the plan's file", () => {
  let header: string;
  beforeAll(async () => {
    await mkdir(join(dir, "models"), { recursive: true });
    header = join(dir, "models", "Qwen3-Next-80B-A3B-Instruct-Q4_K_M.gguf");
    await qwen3NextHeader("Q4_K_M").writeHeader(header);
    await qwen3NextHeader("IQ4_XS").writeHeader(join(dir, "models", "Qwen3-Next-80B-A3B-Instruct-IQ4_XS.gguf"));
  });
  const plan = (text: string) => file("plan.yaml", text).then((path) => loadConfig({ DOCKET_CONFIG: path, DOCKET_GPU: "auto" }));

  it("refuses workers: 4 of the 80B model on one 50 GB GPU with the numbers, and names the settings by their keys", async () => {
    const config = await plan(PLAN.replace("/models/qwen3-next-80b", header));
    const err = await preflight(config, "plan.yaml").catch((e) => e);
    expect(err).toBeInstanceOf(PreflightError);
    expect(err.code).toBe("insufficient_memory");
    expect(err.message).toContain(
      "DOCKET_WORKERS (service.workers)=4 workers would share DOCKET_GPU_MEMORY_BYTES (model.gpu_memory)=50.00 GB, 12.50 GB each",
    );
    expect(err.message).toContain("weights 48.23 GB");
    expect(err.message).toContain("run 1 worker per GPU");
  });

  it("one worker of the same model starts, with 2 sequences of 8192", async () => {
    const config = await plan(PLAN.replace("/models/qwen3-next-80b", header).replace("workers: 4", "workers: 1"));
    const { plan: p, modelPath } = await preflight(config, "plan.yaml");
    expect(modelPath).toBe(resolve(header));
    expect([p.sequences, p.contextSize]).toEqual([2, 8192]);
  });

  it("a folder as model.path yields its one file of model.quantization, and a file of another quantization is refused", async () => {
    const folder = join(dir, "models");
    const pick = (quantization: string) =>
      plan(`service: {workers: 1}\nmodel: {path: '${folder}', quantization: '${quantization}', gpu_memory: 64GB}\n`).then((c) =>
        preflight(c),
      );
    expect((await pick("IQ4_XS")).modelPath).toMatch(/IQ4_XS\.gguf$/);
    await expect(pick("4bit")).rejects.toThrow(/2 GGUF files of quantization 4bit in the folder .*: name one of them/);
    await expect(pick("8bit")).rejects.toThrow(/no GGUF file of quantization 8bit in the folder .*found: .*\(IQ4_XS\)/);
    const wrong = await plan(`model: {path: '${header}', quantization: 'IQ4_XS', gpu_memory: 64GB}\n`);
    await expect(preflight(wrong)).rejects.toMatchObject({
      code: "model_quantization_mismatch",
      message: expect.stringContaining("is Q4_K_M, not IQ4_XS"),
    });
  });

  it("npm start --config with workers: 4 stops before starting anything", async () => {
    const path = await file("start.yaml", PLAN.replace("/models/qwen3-next-80b", header));
    const root = resolve(import.meta.dirname, "..");
    const run = promisify(execFile);
    const err = await run(
      process.execPath,
      ["--import", import.meta.resolve("tsx"), join(root, "tools/start.ts"), "--config", path],
      {
        cwd: dir,
        env: { ...process.env, DOCKET_MODEL: "", NATS_URL: "nats://127.0.0.1:1" },
      },
    ).catch((e: { code: number; stdout: string }) => e);
    expect((err as { code: number }).code).toBe(1);
    const out = (err as { stdout: string }).stdout;
    expect(out).toContain("not starting (insufficient_memory): DOCKET_WORKERS (service.workers)=4 workers");
    expect(out).not.toContain("nats-server");
  });
});
