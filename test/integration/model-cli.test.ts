import { execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BENCH_MODEL, ensureDemoModel } from "../../tools/model/demo-model.ts";
import { estimateMemoryPlan, readModel } from "../../tools/model/inspect.ts";
import { pullModel } from "../../tools/model/pull.ts";
import { DEFAULT_RESERVE_BYTES } from "../../worker/planner.ts";
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

  it("list shows the models in the directory and inspect prints architecture, quantization, layers and a memory plan", async () => {
    const server = await startFileServer({ files: { "/bench.gguf": source } });
    const models = join(dir, "listed");
    try {
      await pullModel({ uri: `${server.url}/bench.gguf`, directory: models });
    } finally {
      await server.close();
    }
    const list = await run(process.execPath, [BIN, "model", "list", "--dir", models]);
    expect(list.stdout).toMatch(/bench\.gguf\s+24\.\d\d MiB\s+llama\s+MOSTLY_Q8_0\s+8 layers\s+ctx 4096/);

    const inspect = await run(process.execPath, [
      BIN,
      "model",
      "inspect",
      join(models, "bench.gguf"),
      "--budget",
      "2GB",
      "--batch",
      "4",
    ]);
    expect(inspect.stdout).toMatch(/architecture\s+llama/);
    expect(inspect.stdout).toMatch(/quantization\s+MOSTLY_Q8_0/);
    expect(inspect.stdout).toMatch(/layers\s+8/);
    expect(inspect.stdout).toMatch(/memory plan for 4 sequences × 4096 tokens/);
    expect(inspect.stdout).toMatch(/fits/);
  });

  it("the memory plan grows with sequences and says when a budget is too small", async () => {
    const { insights } = await readModel(source);
    const small = estimateMemoryPlan(insights, { budget: 50e9, contextSize: 4096, sequences: 1 });
    const large = estimateMemoryPlan(insights, { budget: 50e9, contextSize: 4096, sequences: 8 });
    expect(large.contextBytes).toBeGreaterThan(small.contextBytes);
    expect(small.modelBytes).toBeGreaterThan(20e6);
    // Room for three sequences: the context bytes of one are one sequence plus the planner's fixed reserve.
    const perSequence = small.contextBytes - DEFAULT_RESERVE_BYTES;
    const tight = estimateMemoryPlan(insights, {
      budget: small.modelBytes + small.contextBytes + 2 * perSequence,
      contextSize: 4096,
      sequences: 8,
    });
    expect(tight.fits).toBe(false);
    expect(tight.maxSequences).toBe(3);
  });

  it("inspect of a file that is not GGUF fails with a clear message", async () => {
    const err = await run(process.execPath, [BIN, "model", "inspect", BIN]).catch((e: { code: number; stderr: string }) => e);
    expect((err as { code: number }).code).toBe(1);
    expect((err as { stderr: string }).stderr).toMatch(/is not a readable GGUF file/);
  });
});
