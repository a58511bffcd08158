import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { BENCH_MODEL, ensureDemoModel } from "../tools/model/demo-model.ts";
import { BUILT_IN, loadSizingModel, renderSizing, type SizingRequest, sizeModel } from "../tools/model/plan.ts";
import { startFileServer } from "./helpers/file-server.ts";

const run = promisify(execFile);
const BIN = join(import.meta.dirname, "..", "bin", "docket.js");
type Failure = { code: number; stdout: string; stderr: string };
const docket = (args: string[], env: Record<string, string> = {}) =>
  run(process.execPath, [BIN, ...args], { env: { ...process.env, ...env } }).then(
    (r) => ({ code: 0, ...r }),
    (e: Failure) => e,
  );

const request: SizingRequest = {
  memoryBytes: [48e9, 50e9],
  contexts: [8192, 2048],
  batch: 32,
  gpuLayers: "auto",
  cpuOnly: false,
};

describe("docket model plan: the sizing table", () => {
  it("for Qwen3-Next-80B-A3B at 48 and 50 GB: sequences per quantization and the DOCKET_GPU_LAYERS that runs 32 × 8192", async () => {
    const model = await loadSizingModel(BUILT_IN);
    const { rows, verdicts } = sizeModel(model, request);
    const row = (gb: number, quant: string) => rows.find((r) => r.memoryBytes === gb * 1e9 && r.quant === quant);
    expect(row(48, "Q4_K_M")).toMatchObject({ sequences: [0, 0], batch: { fits: false, gpuLayers: 39 } });
    expect(row(50, "Q4_K_M")).toMatchObject({ sequences: [2, 5], batch: { fits: false, gpuLayers: 41 } });
    expect(row(48, "IQ4_NL")).toMatchObject({ sequences: [7, 15] });
    expect(row(50, "IQ4_NL")).toMatchObject({ sequences: [14, 31] });
    expect(row(48, "IQ4_XS")).toMatchObject({ sequences: [16, 34] });
    expect(row(50, "IQ4_XS")).toMatchObject({ sequences: [23, 50], batch: { fits: false, gpuLayers: 45 } });
    // the worker with the defaults (Q4_K_M, auto): 48 GB keeps 3 layers off the GPU for 3 sequences; 50 GB runs 2
    expect(verdicts.map((v) => [v.fits, v.plan?.sequences, v.plan?.gpuLayers])).toEqual([
      [false, 3, 46],
      [false, 2, 49],
    ]);
    const text = renderSizing(model, request, { rows, verdicts });
    expect(text).toContain("Sizes in GB (10^9 bytes)");
    expect(text).toMatch(/50 GB\s+IQ4_XS\*\s+42\.60 GB\s+23\s+50\s+DOCKET_GPU_LAYERS=45: 2\.89 GB of weights in system memory/);
    expect(text).toContain("48 GB: DOES NOT FIT as requested; the worker would run 3 × 8192 tokens, 46 of 49 layers on the GPU");
  });

  it("a file's own quantization comes first, read from its tensors; the others are sized by the quantizer rules", async () => {
    const model = await loadSizingModel(await ensureDemoModel(BENCH_MODEL));
    expect(model.quants.map((q) => [q.quant, q.origin])).toEqual([
      ["Q8_0", "file"],
      ["Q4_K_M", "rules"],
      ["Q4_K_S", "rules"],
      ["IQ4_NL", "rules"],
      ["MXFP4_MOE", "rules"],
      ["IQ4_XS", "rules"],
    ]);
    const size = (quant: string) => model.quants.find((q) => q.quant === quant)!.shape.modelBytes;
    expect(size("Q4_K_M")).toBeLessThan(size("Q8_0"));
    expect(size("IQ4_XS")).toBeLessThan(size("Q4_K_M"));
    // MXFP4_MOE quantizes only experts to 4 bits and the rest to Q8_0: a dense model stays all Q8_0
    expect(size("MXFP4_MOE")).toBe(size("Q8_0"));
    const { verdicts } = sizeModel(model, { ...request, memoryBytes: [2e9], contexts: [4096], batch: 4 });
    expect(verdicts[0]).toMatchObject({ fits: true, plan: { sequences: 4, contextSize: 4096 } });
  });
});

describe("docket model plan: the command", () => {
  it("--help prints the usage and exits 0", async () => {
    const r = await docket(["model", "plan", "--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("docket model plan");
  });

  it("exits 6 when the requested plan does not fit one of the memory sizes, 0 when it fits them all", async () => {
    const no = await docket(["model", "plan", "qwen3next", "--memory", "50GB"]);
    expect(no.code).toBe(6);
    expect(no.stdout).toContain("50 GB: DOES NOT FIT as requested");
    const yes = await docket(["model", "plan", "--qwen3next", "--memory", "64GB", "--quant", "iq4_xs", "--json"]);
    expect(yes.code).toBe(0);
    const json = JSON.parse(yes.stdout);
    expect(json.model.quantization).toBe("IQ4_XS");
    expect(json.verdicts[0]).toMatchObject({ memoryBytes: 64e9, fits: true, plan: { sequences: 32 } });
  });

  it("reads only the header of an hf: URI", async () => {
    const source = await ensureDemoModel(BENCH_MODEL);
    const server = await startFileServer({
      files: { "/acme/demo-GGUF/resolve/main/demo.Q8_0.gguf": source },
      json: { "/v2/acme/demo-GGUF/manifests/Q8_0": { ggufFile: { rfilename: "demo.Q8_0.gguf" } } },
    });
    try {
      const r = await docket(["model", "plan", "hf:acme/demo-GGUF:Q8_0", "--hf-endpoint", `${server.url}/`, "--memory", "1GB"]);
      expect(r.stdout).toMatch(/1 GB\s+Q8_0\s+/);
      expect(server.sentBytes()).toBeLessThan(5_000_000); // the file is 27 MB
    } finally {
      await server.close();
    }
  });

  it("bad input is a usage error with a one-line message, never a stack", async () => {
    const cases: [string[], Record<string, string>, RegExp][] = [
      [["qwen3next", "--memory", "lots"], {}, /--memory: not a size: "lots"/],
      [["qwen3next", "--quant", "Q9_Z"], {}, /--quant: unknown quantization "Q9_Z"/],
      [["qwen3next", "--batch", "0"], {}, /--batch: "0" is not a whole number of at least 1/],
      [["qwen3next", "--gpu-layers", "most"], {}, /--gpu-layers: "most" is not auto or a whole number/],
      [["./no-such.gguf"], {}, /no such file: \.\/no-such\.gguf/],
      [["qwen3next", "--nope"], {}, /Unknown option '--nope'/],
      [
        ["qwen3next"],
        { DOCKET_GPU_MEMORY: "lots" },
        /invalid configuration:\s+DOCKET_GPU_MEMORY_BYTES \(set as DOCKET_GPU_MEMORY\): not a size: "lots"/,
      ],
    ];
    for (const [args, env, message] of cases) {
      const r = await docket(["model", "plan", ...args], env);
      expect([r.code, r.stderr]).toEqual([2, expect.stringMatching(message)]);
      expect(r.stderr).not.toMatch(/^\s+at /m);
    }
  });
});
