import { execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BENCH_MODEL, ensureDemoModel, TEST_MODEL } from "../../tools/model/demo-model.ts";
import { pullModel } from "../../tools/model/pull.ts";
import { startFileServer } from "../helpers/file-server.ts";

const run = promisify(execFile);
const BIN = join(import.meta.dirname, "..", "..", "bin", "docket.js");
const sha = async (file: string) =>
  createHash("sha256")
    .update(await readFile(file))
    .digest("hex");

let source: string;
let dir: string;
beforeAll(async () => {
  source = await ensureDemoModel(BENCH_MODEL);
  dir = await mkdtemp(join(tmpdir(), "docket-models-"));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe("docket model", () => {
  it("pull downloads a URL byte-identically with a progress bar, and a second pull does not fetch it again", async () => {
    const server = await startFileServer({ files: { "/files/bench.gguf": source } });
    try {
      const out = join(dir, "url");
      const { stdout, stderr } = await run(process.execPath, [
        BIN,
        "model",
        "pull",
        `${server.url}/files/bench.gguf`,
        "--dir",
        out,
      ]);
      expect(stdout.trim()).toBe(join(out, "bench.gguf"));
      expect(stderr).toMatch(/pull 100% /);
      expect(await sha(join(out, "bench.gguf"))).toBe(await sha(source));
      const before = server.requests.length;
      const again = await run(process.execPath, [BIN, "model", "pull", `${server.url}/files/bench.gguf`, "--dir", out]);
      expect(again.stdout).toContain("already downloaded");
      expect(server.requests.slice(before).filter((r) => r.range)).toEqual([]);
    } finally {
      await server.close();
    }
  });

  it("a pull whose connection is cut mid-file resumes with Range requests and ends byte-identical", async () => {
    const server = await startFileServer({ files: { "/files/bench.gguf": source }, cutFirstGets: 1, cutAfterBytes: 3_000_000 });
    try {
      const { path } = await pullModel({ uri: `${server.url}/files/bench.gguf`, directory: join(dir, "cut") });
      expect(await sha(path)).toBe(await sha(source));
      expect(server.requests.some((r) => r.range?.startsWith("bytes=0-"))).toBe(true);
    } finally {
      await server.close();
    }
  });

  it("a pull stopped with Ctrl-C keeps its partial file, and the next pull fetches only the rest", async () => {
    const size = (await readFile(source)).length;
    const options: Parameters<typeof startFileServer>[0] = { files: { "/files/bench.gguf": source }, chunkDelayMs: 40 };
    const server = await startFileServer(options);
    const out = join(dir, "interrupted");
    try {
      const first = spawn(process.execPath, [BIN, "model", "pull", `${server.url}/files/bench.gguf`, "--dir", out], {
        stdio: "ignore",
      });
      // A slow network: interrupt once 90% has arrived (ipull writes whole 5 MB chunks, in parallel).
      for (const deadline = Date.now() + 30_000; server.sentBytes() < size * 0.9; ) {
        if (Date.now() > deadline) throw new Error(`the first pull got only ${server.sentBytes()} bytes`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const exited = new Promise((r) => first.once("exit", r));
      first.kill("SIGINT");
      await exited;
      expect(existsSync(join(out, "bench.gguf.ipull"))).toBe(true);
      expect(existsSync(join(out, "bench.gguf"))).toBe(false);

      options.chunkDelayMs = undefined;
      const before = server.requests.length;
      await run(process.execPath, [BIN, "model", "pull", `${server.url}/files/bench.gguf`, "--dir", out]);
      expect(await sha(join(out, "bench.gguf"))).toBe(await sha(source));
      // Only the chunks the first pull had not written were asked for again (ipull's first GET only reads the size).
      const ranged = server.requests
        .slice(before)
        .map((r) => /^bytes=(\d+)-(\d+)$/.exec(r.range ?? ""))
        .filter((m): m is RegExpExecArray => m !== null)
        .reduce((n, m) => n + Number(m[2]) - Number(m[1]) + 1, 0);
      expect(ranged).toBeGreaterThan(0);
      expect(ranged).toBeLessThan(size * 0.5);
    } finally {
      await server.close();
    }
  });

  it("pulls hf:<user>/<repo>/<file> and hf:<user>/<repo>:<quant> from a Hugging Face endpoint", async () => {
    const file = "/acme/demo-GGUF/resolve/main/demo.Q8_0.gguf";
    const server = await startFileServer({
      files: { [file]: source },
      json: { "/v2/acme/demo-GGUF/manifests/Q8_0": { ggufFile: { rfilename: "demo.Q8_0.gguf" } } },
    });
    try {
      const byFile = await pullModel({
        uri: "hf:acme/demo-GGUF/demo.Q8_0.gguf",
        directory: join(dir, "hf-file"),
        huggingFaceEndpoint: `${server.url}/`,
      });
      expect(await sha(byFile.path)).toBe(await sha(source));
      const byQuant = await pullModel({
        uri: "hf:acme/demo-GGUF:Q8_0",
        directory: join(dir, "hf-quant"),
        huggingFaceEndpoint: `${server.url}/`,
      });
      expect(await sha(byQuant.path)).toBe(await sha(source));
      expect(server.requests.map((r) => r.path)).toContain(file);
    } finally {
      await server.close();
    }
  });

  it("list shows every model docket can use: DOCKET_MODEL, the models folder and the generated demo model", async () => {
    const server = await startFileServer({ files: { "/bench.gguf": source } });
    const models = join(dir, "listed");
    try {
      await pullModel({ uri: `${server.url}/bench.gguf`, directory: models });
    } finally {
      await server.close();
    }
    const tiny = await ensureDemoModel(TEST_MODEL);
    const list = await run(process.execPath, [BIN, "model", "list", "--dir", models], {
      env: { ...process.env, DOCKET_MODEL: "hf:acme/demo-GGUF:Q8_0" },
    });
    const lines = list.stdout.split("\n");
    expect(lines[0]).toMatch(/^role\s+size\s+architecture\s+quantization\s+layers\s+context\s+where$/);
    expect(lines.find((l) => l.startsWith("DOCKET_MODEL "))).toMatch(/hf:acme\/demo-GGUF:Q8_0 .*downloaded/);
    expect(lines.find((l) => l.startsWith("DOCKET_MODELS_DIR"))).toMatch(/25\.\d MB\s+llama\s+Q8_0\s+8\s+4096\s+.*bench\.gguf/);
    const demo = lines.find((l) => l.startsWith("demo"));
    expect(demo).toMatch(/llama\s+F16\s+2\s+4096/);
    expect(demo).toContain(tiny);
    expect(demo).toContain("noise");
    expect(list.stdout).toContain("Sizes in GB/MB");

    const json = async (env: Record<string, string>) =>
      JSON.parse(
        (await run(process.execPath, [BIN, "model", "list", "--dir", models, "--json"], { env: { ...process.env, ...env } }))
          .stdout,
      );
    const roles = (list: { role: string }[]) => list.map((m) => m.role);
    expect(roles(await json({ DOCKET_MODEL: "hf:acme/demo-GGUF:Q8_0" }))).toEqual(["DOCKET_MODEL", "DOCKET_MODELS_DIR", "demo"]);
    // DOCKET_MODEL naming the demo model lists it once
    const once = await json({ DOCKET_MODEL: tiny });
    expect(roles(once)).toEqual(["DOCKET_MODEL", "DOCKET_MODELS_DIR"]);
    expect(once[0].where).toBe(tiny);
  });

  it("inspect prints architecture, size in GB/MB, quantization, layers and the KV cache per token", async () => {
    const inspect = await run(process.execPath, [BIN, "model", "inspect", source]);
    expect(inspect.stdout).toMatch(/architecture\s+llama/);
    expect(inspect.stdout).toMatch(/size\s+25\.\d MB/);
    expect(inspect.stdout).toMatch(/quantization\s+Q8_0/);
    expect(inspect.stdout).toMatch(/layers\s+8: 8 keep a KV cache, 0 a fixed recurrent state/);
    expect(inspect.stdout).toContain("docket model plan");
  });

  it("inspect of a file that is not GGUF fails with a clear message", async () => {
    const err = await run(process.execPath, [BIN, "model", "inspect", BIN]).catch((e: { code: number; stderr: string }) => e);
    expect((err as { code: number }).code).toBe(1);
    expect((err as { stderr: string }).stderr).toMatch(/is not a readable GGUF file/);
  });
});
