/**
 * The sizing table behind `docket model plan`: for each memory size and each common 4-bit quantization of a
 * model, how many sequences fit at each context with every layer on the GPU, what runs the requested batch
 * when it does not fit, and what the worker would do with the requested settings (the worker's own planner).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type GgufFileInfo, readGgufFileInfo } from "node-llama-cpp";
import { type ModelShape, modelShape } from "../../worker/model-shape.ts";
import {
  DEFAULT_RESERVE_BYTES,
  formatBytes,
  gpuLayersFor,
  type MemoryPlan,
  MemoryPlanError,
  placeLayers,
  planMemory,
  sequencesThatFit,
} from "../../worker/planner.ts";
import { FOUR_BIT_QUANTS, QUANT_FILE_TYPE, type Quant, quantizedTypes, quantName } from "./quants.ts";
import { qwen3NextHeader } from "./qwen3next-header.ts";

/** Memory sizes the table shows when none are given: the headline's 48-50 GB and the next common GPU sizes. */
export const DEFAULT_MEMORY_BYTES = [48e9, 50e9, 64e9, 96e9];
/** `docket model plan qwen3next`: the built-in Qwen3-Next-80B-A3B-Instruct header. */
export const BUILT_IN = "qwen3next";

/** One quantization of the model: its shape, and whether its tensor types come from the file or the quantizer rules. */
export interface SizedQuant {
  quant: string;
  origin: "file" | "rules";
  shape: ModelShape;
}

export interface SizingModel {
  name: string;
  /** The file, the hf: URI, or "built-in header". */
  source: string;
  /** The quantization the verdict is about: the file's own, or the first one asked for. */
  requested: SizedQuant;
  quants: SizedQuant[];
}

type Meta = Record<string, unknown>;
const count = (v: unknown) => (Array.isArray(v) ? Number(v[0] ?? 0) : Number(v ?? 0));

/** The file's tensors retyped as llama.cpp would quantize them to `quant`. */
function requantize(info: GgufFileInfo, quant: Quant): GgufFileInfo {
  const arch = String(info.metadata.general?.architecture ?? "");
  const a = ((info.metadata as unknown as Meta)[arch] ?? {}) as Meta;
  const attention = (a.attention ?? {}) as Meta;
  const kv = count(attention.head_count_kv);
  const tensors = info.fullTensorInfo ?? info.tensorInfo ?? [];
  const types = quantizedTypes(
    tensors,
    { layers: count(a.block_count), experts: count(a.expert_count), gqa: kv ? count(attention.head_count) / kv : 0 },
    quant,
  );
  const retyped = tensors.map((t, i) => ({ ...t, ggmlType: types[i] as typeof t.ggmlType }));
  return { ...info, tensorInfo: retyped, fullTensorInfo: retyped };
}

export interface LoadOptions {
  /** Quantizations to size (default: the common 4-bit ones); for a file its own comes first whatever this says. */
  quants?: readonly Quant[];
  /** Overrides https://huggingface.co for hf: URIs. */
  huggingFaceEndpoint?: string;
}

/** Reads a GGUF file's or an hf: URI's header (not the weights), or builds the built-in one, and sizes its quantizations. */
export async function loadSizingModel(target: string, o: LoadOptions = {}): Promise<SizingModel> {
  const wanted = o.quants ?? FOUR_BIT_QUANTS;
  if (target === BUILT_IN) {
    const dir = await mkdtemp(join(tmpdir(), "docket-plan-"));
    try {
      const quants: SizedQuant[] = [];
      for (const quant of wanted) {
        const path = join(dir, `${quant}.gguf`);
        await qwen3NextHeader(quant).writeHeader(path);
        quants.push({ quant, origin: "rules", shape: modelShape(await readGgufFileInfo(path, { logWarnings: false })) });
      }
      return {
        name: "Qwen3-Next-80B-A3B-Instruct",
        source: "built-in header (config.json shapes; tensor types by llama.cpp's quantizer rules)",
        requested: quants[0] as SizedQuant,
        quants,
      };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  const info = await readGgufFileInfo(target, {
    logWarnings: false,
    ignoreKeys: ["tokenizer.ggml.merges", "tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.ggml.scores"],
    ...(o.huggingFaceEndpoint ? { endpoints: { huggingFace: o.huggingFaceEndpoint } } : {}),
  });
  const fileType = info.metadata.general?.file_type;
  const own: SizedQuant = { quant: quantName(fileType), origin: "file", shape: modelShape(info) };
  const others = wanted
    .filter((q) => QUANT_FILE_TYPE[q] !== fileType)
    .map((quant): SizedQuant => ({ quant, origin: "rules", shape: modelShape(requantize(info, quant)) }));
  return {
    name: String(info.metadata.general?.name ?? target.split("/").at(-1)),
    source: target,
    requested: own,
    quants: [own, ...others],
  };
}

export interface SizingRequest {
  memoryBytes: readonly number[];
  /** Tokens per sequence, one table column each; the first is the requested context. */
  contexts: readonly number[];
  /** Sequences requested (DOCKET_MAX_BATCH). */
  batch: number;
  /** DOCKET_GPU_LAYERS: "auto" sizes the table with every layer on the GPU. */
  gpuLayers: number | "auto";
  cpuOnly: boolean;
  /** DOCKET_WORKERS: workers sharing each memory size; the verdict plans each for its part (default 1). */
  workers?: number;
}

export interface SizingRow {
  memoryBytes: number;
  quant: string;
  origin: SizedQuant["origin"];
  weightBytes: number;
  /** Sequences that fit at each of the request's contexts (0: not one). */
  sequences: number[];
  /** What runs `batch` × the first context here: every layer on the GPU, fewer of them, or nothing. */
  batch: {
    fits: boolean;
    /** DOCKET_GPU_LAYERS that runs it: layers on the GPU of layers + 1. */
    gpuLayers?: number;
    /** Weights those leave in system memory (beside the token embeddings, which are there anyway). */
    offloadBytes?: number;
  };
}

export interface Verdict {
  memoryBytes: number;
  /** The requested batch × context runs as asked. */
  fits: boolean;
  /** What the worker would run (its planner); absent when it would refuse to start. */
  plan?: MemoryPlan;
  refused?: string;
}

export interface Sizing {
  rows: SizingRow[];
  verdicts: Verdict[];
}

export function sizeModel(model: SizingModel, r: SizingRequest): Sizing {
  const context = r.contexts[0] as number;
  const rows: SizingRow[] = [];
  for (const memoryBytes of r.memoryBytes) {
    for (const q of model.quants) {
      const fit = { budgetBytes: memoryBytes, cpuOnly: r.cpuOnly };
      const layers = r.gpuLayers === "auto" ? q.shape.layers + 1 : r.gpuLayers;
      const sequences = r.contexts.map((c) => {
        const n = sequencesThatFit(q.shape, { ...fit, contextSize: c, gpuLayers: layers });
        return Number.isFinite(n) ? n : r.batch;
      });
      let batch: SizingRow["batch"] = { fits: (sequences[0] ?? 0) >= r.batch };
      if (!batch.fits && !r.cpuOnly) {
        const g = gpuLayersFor(q.shape, { budgetBytes: memoryBytes, contextSize: context, sequences: r.batch });
        const { system } = placeLayers(q.shape, { gpuLayers: g ?? 0 });
        batch =
          g === undefined
            ? { fits: false }
            : { fits: false, gpuLayers: g, offloadBytes: system.weightBytes - q.shape.inputBytes };
      }
      rows.push({ memoryBytes, quant: q.quant, origin: q.origin, weightBytes: q.shape.modelBytes, sequences, batch });
    }
  }
  const verdicts = r.memoryBytes.map((memoryBytes): Verdict => {
    try {
      const plan = planMemory({
        shape: model.requested.shape,
        budgetBytes: Math.floor(memoryBytes / (r.workers ?? 1)),
        ...((r.workers ?? 1) > 1 ? { budgetName: `${gb(memoryBytes)} / DOCKET_WORKERS=${r.workers}` } : {}),
        maxSequences: r.batch,
        contextSize: context,
        gpuLayers: r.gpuLayers,
        cpuOnly: r.cpuOnly,
      });
      const asked = Math.min(context, model.requested.shape.trainContextSize ?? context);
      return { memoryBytes, fits: plan.sequences >= r.batch && plan.contextSize >= asked, plan };
    } catch (err) {
      if (!(err instanceof MemoryPlanError)) throw err;
      return { memoryBytes, fits: false, refused: err.message };
    }
  });
  return { rows, verdicts };
}

const gb = (b: number) => `${Math.round(b / 1e9)} GB`;

function table(head: string[], body: string[][]): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => (row[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  return [line(head), ...body.map(line)];
}

/** The table and the verdict as text. */
export function renderSizing(model: SizingModel, r: SizingRequest, s: Sizing): string {
  const shape = model.requested.shape;
  const context = r.contexts[0] as number;
  const out: string[] = [
    `${model.name}: ${model.source}`,
    `${shape.architecture}, ${shape.layers} layers: ${shape.attentionLayers} keep a KV cache (${formatBytes(shape.kvBytesPerToken)} per token at f16)` +
      (shape.recurrentLayers
        ? `, ${shape.recurrentLayers} a fixed recurrent state (${formatBytes(shape.recurrentStateBytesPerSequence)} per sequence)`
        : ""),
    `Sizes in GB (10^9 bytes). Each memory holds the GPU's part: the weights but the token embeddings (system memory), ` +
      `${formatBytes(DEFAULT_RESERVE_BYTES)} for compute buffers, and the KV cache and state of the sequences.`,
    r.cpuOnly
      ? "DOCKET_GPU=false: memory is system memory and holds the whole model."
      : `Sequences: how many fit with ${r.gpuLayers === "auto" ? "every layer" : `DOCKET_GPU_LAYERS=${r.gpuLayers} layers`} on the GPU; ` +
        `DOCKET_GPU_LAYERS=N: N of ${shape.layers + 1} layers (${shape.layers} and the output layer) on the GPU, the rest in system memory.`,
    "",
  ];
  const head = [
    "memory",
    "quantization",
    "weights",
    ...r.contexts.map((c) => `seq × ${c}`),
    `${r.batch} × ${context}: fits, or what runs it`,
  ];
  const body = s.rows.map((row) => [
    gb(row.memoryBytes),
    `${row.quant}${row.origin === "rules" ? "*" : ""}`,
    formatBytes(row.weightBytes),
    ...row.sequences.map(String),
    row.batch.fits
      ? "fits"
      : row.batch.gpuLayers !== undefined
        ? `DOCKET_GPU_LAYERS=${row.batch.gpuLayers}: ${formatBytes(row.batch.offloadBytes ?? 0)} of weights in system memory`
        : "no: not even one layer on the GPU leaves room",
  ]);
  out.push(...table(head, body));
  if (model.quants.some((q) => q.origin === "rules")) {
    out.push(
      "",
      "* sized from the model's shapes with llama.cpp's quantizer rules (imatrix quants, as published); for Qwen3-Next-80B-A3B " +
        "they match the published Q4_K_M (48.41 GB) and IQ4_NL (45.08 GB) files.",
    );
  }
  out.push(
    "",
    `Requested: ${r.batch} sequences × ${context} tokens of ${model.requested.quant} (DOCKET_MAX_BATCH, DOCKET_CONTEXT_SIZE, ` +
      `DOCKET_GPU_LAYERS=${r.gpuLayers}); what the worker would do` +
      ((r.workers ?? 1) > 1 ? ` (DOCKET_WORKERS=${r.workers}: each of them, with its part of the memory):` : ":"),
  );
  for (const v of s.verdicts) {
    if (v.refused) out.push(`  ${gb(v.memoryBytes)}: DOES NOT FIT; the worker refuses to start: ${v.refused}`);
    else if (v.plan) {
      const p = v.plan;
      const where = p.cpuOnly ? "CPU only" : `${p.gpuLayers} of ${p.totalLayers} layers on the GPU`;
      const runs = `${p.sequences} × ${p.contextSize} tokens, ${where}, ${formatBytes(p.totalBytes)} of ${formatBytes(p.budgetBytes)}`;
      out.push(`  ${gb(v.memoryBytes)}: ${v.fits ? "fits:" : "DOES NOT FIT as requested; the worker would run"} ${runs}`);
    }
  }
  return out.join("\n");
}
