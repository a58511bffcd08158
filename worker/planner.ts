import { stat } from "node:fs/promises";
import { type GgufFileInfo, readGgufFileInfo } from "node-llama-cpp";
import type { Config } from "../schema/config.ts";
import { type KvCacheType, type ModelShape, ModelShapeError, modelShape } from "./model-shape.ts";

/**
 * Memory planner: how many sequences (S) of how many tokens each fit the memory budget next to the
 * model's weights, and how many layers go on the GPU, computed from the GGUF header alone (no GPU, no load).
 *
 *   budget ≥ GPU weights + reserve + S × (context × KV bytes per token + recurrent state per sequence)
 *
 * summed over the layers on the GPU. KV bytes per token count only layers that keep a KV cache (all of
 * them for a transformer, 1 in full_attention_interval for qwen3next); recurrent (SSM / linear-attention)
 * layers keep a fixed f32 state per sequence whatever the context (llama_memory_recurrent).
 *
 * gpuLayers follows node-llama-cpp's `gpuLayers` (llama.cpp's n_gpu_layers): the last N repeating layers
 * go on the GPU, with their KV cache and state; N = layers + 1 adds the output layer. Token embeddings
 * always stay in system memory (llama.cpp's input layer). Layers off the GPU cost system memory and speed,
 * not budget. node-llama-cpp 3.21.1 has no setting that keeps only a layer's experts in system memory
 * (llama.cpp's --n-cpu-moe / tensor overrides), so the planner offers whole layers.
 */

/** Context sizes the planner picks when it must shrink them are multiples of this (llama.cpp pads to 256). */
export const CONTEXT_STEP = 256;
/** Compute buffers, output logits, backend contexts and fragmentation, kept out of the budget. */
export const DEFAULT_RESERVE_BYTES = 1024 ** 3;
/** Below this a sequence holds too little of a document to be useful. */
export const DEFAULT_MIN_CONTEXT = 1024;
/**
 * The most layers DOCKET_GPU_LAYERS=auto keeps in system memory: a quarter. Past that the CPU computes most
 * of the model and the GPU budget is the wrong one (four workers sharing one GPU, a budget set too low):
 * the planner refuses and names the count, which DOCKET_GPU_LAYERS can set on purpose.
 */
export const MAX_AUTO_OFFLOAD = 0.25;

export type MemoryPlanErrorCode = "insufficient_memory" | "unknown_model_shape";

/** The model cannot run in the budget (or its shape cannot be read); the message says what to change. */
export class MemoryPlanError extends Error {
  constructor(
    readonly code: MemoryPlanErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** Where the budget's memory goes, or what stays outside it. */
export interface MemoryPart {
  weightBytes: number;
  kvBytesPerToken: number;
  stateBytesPerSequence: number;
}

export interface PlacementOptions {
  /** Layers on the GPU, node-llama-cpp's count: repeating layers + 1 for the output layer. */
  gpuLayers: number;
  /** No GPU (DOCKET_GPU=false): the budget is system memory and holds everything. */
  cpuOnly?: boolean;
}

/** What `gpuLayers` puts in the budget (the GPU) and what it leaves in system memory. */
export function placeLayers(shape: ModelShape, o: PlacementOptions): { gpu: MemoryPart; system: MemoryPart } {
  const gpu: MemoryPart = { weightBytes: 0, kvBytesPerToken: 0, stateBytesPerSequence: 0 };
  const system: MemoryPart = { weightBytes: 0, kvBytesPerToken: 0, stateBytesPerSequence: 0 };
  const onGpuFrom = o.cpuOnly ? 0 : shape.layers - Math.min(o.gpuLayers, shape.layers);
  shape.perLayer.forEach((layer, i) => {
    const part = o.cpuOnly || (o.gpuLayers > 0 && i >= onGpuFrom) ? gpu : system;
    part.weightBytes += layer.weightBytes;
    part.kvBytesPerToken += layer.kvBytesPerToken;
    part.stateBytesPerSequence += layer.stateBytesPerSequence;
  });
  (o.cpuOnly || o.gpuLayers > shape.layers ? gpu : system).weightBytes += shape.outputBytes;
  (o.cpuOnly ? gpu : system).weightBytes += shape.inputBytes;
  return { gpu, system };
}

export interface FitOptions extends PlacementOptions {
  budgetBytes: number;
  contextSize: number;
  reserveBytes?: number;
}

const perSequence = (p: MemoryPart, context: number) => context * p.kvBytesPerToken + p.stateBytesPerSequence;

/** How many sequences of `contextSize` tokens fit the budget (0: not one; Infinity: none of them costs budget). */
export function sequencesThatFit(shape: ModelShape, o: FitOptions): number {
  const { gpu } = placeLayers(shape, o);
  const free = o.budgetBytes - gpu.weightBytes - (o.reserveBytes ?? DEFAULT_RESERVE_BYTES);
  if (free < 0) return 0;
  const each = perSequence(gpu, o.contextSize);
  return each > 0 ? Math.floor(free / each) : Number.POSITIVE_INFINITY;
}

/**
 * The most layers on the GPU (node-llama-cpp's count, at least 1) with which `sequences` × `contextSize` fit
 * the budget; undefined when not even one layer on the GPU leaves room for them.
 */
export function gpuLayersFor(
  shape: ModelShape,
  o: Omit<FitOptions, "gpuLayers" | "cpuOnly"> & { sequences: number },
): number | undefined {
  for (let g = shape.layers + 1; g >= 1; g--) if (sequencesThatFit(shape, { ...o, gpuLayers: g }) >= o.sequences) return g;
  return undefined;
}

export interface PlanMemoryInput {
  /** From readGgufFileInfo (metadata + tensor infos), or a shape computed already. */
  fileInfo?: GgufFileInfo;
  shape?: ModelShape;
  /** Memory for GPU weights + KV cache + recurrent state + reserve (DOCKET_GPU_MEMORY_BYTES / DOCKET_WORKERS). */
  budgetBytes: number;
  /** DOCKET_MAX_BATCH. */
  maxSequences: number;
  /** DOCKET_CONTEXT_SIZE: tokens per sequence, preferred. */
  contextSize: number;
  /**
   * DOCKET_GPU_LAYERS: layers on the GPU (repeating layers + 1 for the output layer), or "auto": every layer
   * when one sequence of `contextSize` fits beside the weights, otherwise the most that leave room for one,
   * keeping at most MAX_AUTO_OFFLOAD of them off the GPU.
   */
  gpuLayers?: number | "auto";
  /** DOCKET_GPU=false: the budget is system memory and holds everything. */
  cpuOnly?: boolean;
  minContextSize?: number;
  reserveBytes?: number;
  kvCacheType?: KvCacheType;
  /** How messages name the budget; default DOCKET_GPU_MEMORY_BYTES. */
  budgetName?: string;
}

export interface MemoryPlan {
  sequences: number;
  /** Tokens per sequence. */
  contextSize: number;
  budgetBytes: number;
  /** Layers on the GPU, node-llama-cpp's count (0 when cpuOnly). */
  gpuLayers: number;
  /** Repeating layers + the output layer: gpuLayers when the whole model is on the GPU. */
  totalLayers: number;
  /**
   * What the engine hands node-llama-cpp's loadModel as `gpuLayers`: the count when DOCKET_GPU_LAYERS names one
   * or the planner kept layers off the GPU; undefined leaves node-llama-cpp's "auto" (which also measures the
   * GPU's free memory). Without a GPU node-llama-cpp loads every layer in system memory whatever it is.
   */
  engineGpuLayers: number | undefined;
  cpuOnly: boolean;
  /** Weights in the file. */
  modelBytes: number;
  /** Weights in the budget. */
  gpuWeightBytes: number;
  reserveBytes: number;
  /** KV cache + recurrent state in the budget. */
  gpuContextBytes: number;
  /** gpuWeightBytes + reserveBytes + gpuContextBytes: at most budgetBytes. */
  totalBytes: number;
  /** Weights, KV cache and state of the layers kept in system memory (token embeddings at least). */
  systemBytes: number;
  /** Whole model. */
  kvBytesPerToken: number;
  recurrentStateBytesPerSequence: number;
  /** S × context × kvBytesPerToken, whole model. */
  kvCacheBytes: number;
  /** S × recurrentStateBytesPerSequence, whole model. */
  recurrentStateBytes: number;
  /** What maxSequences × contextSize needs with every layer on the GPU. */
  wantedBytes: number;
  /** The most layers on the GPU that run the configured batch in this budget (undefined: none does). */
  gpuLayersForFullBatch: number | undefined;
  /** The largest weights file that would run the configured batch in this budget with every layer on the GPU. */
  maxModelBytesForFullBatch: number;
  shape: ModelShape;
  notes: string[];
}

const GB = 1e9;
/** docket prints sizes in SI units (kB, MB, GB: powers of 1000), as DOCKET_GPU_MEMORY_BYTES=50GB reads them. */
export const formatBytes = (b: number) =>
  b >= GB ? `${(b / GB).toFixed(2)} GB` : b >= 1e6 ? `${(b / 1e6).toFixed(1)} MB` : `${(b / 1e3).toFixed(1)} kB`;

/** "39 (9 of 48 layers and the output layer, 9.60 GB, in system memory)": what DOCKET_GPU_LAYERS=39 does. */
export function describeGpuLayers(shape: ModelShape, gpuLayers: number): string {
  const blocksOff = shape.layers - Math.min(gpuLayers, shape.layers);
  const { system } = placeLayers(shape, { gpuLayers });
  const layers = blocksOff === 0 ? "the output layer" : `${blocksOff} of ${shape.layers} layers and the output layer`;
  return `${gpuLayers} (${layers}, ${formatBytes(system.weightBytes - shape.inputBytes)}, in system memory)`;
}

/**
 * The largest S × context that fits: the configured context with as many sequences as fit (up to
 * maxSequences); if not even one sequence fits at that context, one sequence with the largest context that
 * fits (a multiple of 256, at least minContextSize). With gpuLayers "auto" the layers that do not fit stay in
 * system memory before the context shrinks. Throws MemoryPlanError (insufficient_memory) when one sequence
 * at minContextSize does not fit. Pure: no GPU, no I/O.
 */
export function planMemory(input: PlanMemoryInput): MemoryPlan {
  const shape =
    input.shape ?? (input.fileInfo ? modelShape(input.fileInfo, { kvCacheType: input.kvCacheType ?? "f16" }) : undefined);
  if (!shape) throw new MemoryPlanError("unknown_model_shape", "planMemory needs fileInfo or shape");
  const reserve = input.reserveBytes ?? DEFAULT_RESERVE_BYTES;
  const budget = input.budgetBytes;
  const cpuOnly = input.cpuOnly ?? false;
  const budgetName = input.budgetName ?? "DOCKET_GPU_MEMORY_BYTES";
  const totalLayers = shape.layers + 1;
  const notes: string[] = [];
  const wantedContext = Math.min(input.contextSize, shape.trainContextSize ?? Number.POSITIVE_INFINITY);
  if (wantedContext < input.contextSize) {
    notes.push(`context ${input.contextSize} capped at the model's training context ${wantedContext}`);
  }
  const minContext = Math.min(input.minContextSize ?? DEFAULT_MIN_CONTEXT, wantedContext);
  const fit = { budgetBytes: budget, reserveBytes: reserve, cpuOnly };
  const fits = (gpuLayers: number, contextSize: number) => sequencesThatFit(shape, { ...fit, gpuLayers, contextSize });

  let gpuLayers = totalLayers;
  const asked = input.gpuLayers ?? "auto";
  if (cpuOnly) {
    gpuLayers = 0;
    notes.push(
      `CPU only (DOCKET_GPU=false): the budget is system memory and holds the whole model${asked === "auto" ? "" : `; DOCKET_GPU_LAYERS=${asked} has no effect`}`,
    );
  } else if (asked !== "auto") {
    gpuLayers = Math.min(asked, totalLayers);
    if (asked > totalLayers) notes.push(`DOCKET_GPU_LAYERS=${asked} capped at the model's ${totalLayers} layers`);
  } else if (fits(totalLayers, wantedContext) < 1) {
    const g = gpuLayersFor(shape, { ...fit, contextSize: wantedContext, sequences: 1 });
    if (g !== undefined && totalLayers - g <= Math.floor(totalLayers * MAX_AUTO_OFFLOAD)) {
      gpuLayers = g;
      notes.push(
        `the weights leave no room for one sequence of ${wantedContext} tokens: DOCKET_GPU_LAYERS=auto chose ${describeGpuLayers(shape, g)}`,
      );
    }
  }
  const { gpu, system } = placeLayers(shape, { gpuLayers, cpuOnly });
  const free = budget - gpu.weightBytes - reserve;
  let sequences = Math.min(input.maxSequences, fits(gpuLayers, wantedContext));
  let contextSize = wantedContext;
  if (sequences < 1) {
    sequences = 1;
    contextSize =
      gpu.kvBytesPerToken > 0
        ? Math.min(
            wantedContext,
            Math.floor((free - gpu.stateBytesPerSequence) / gpu.kvBytesPerToken / CONTEXT_STEP) * CONTEXT_STEP,
          )
        : free >= gpu.stateBytesPerSequence
          ? wantedContext
          : 0;
  }

  const all = placeLayers(shape, { gpuLayers: totalLayers, cpuOnly }).gpu;
  const fullBatchState = input.maxSequences * perSequence(all, wantedContext);
  const wantedBytes = all.weightBytes + reserve + fullBatchState;
  const maxModelBytesForFullBatch = Math.max(0, budget - reserve - fullBatchState + (shape.modelBytes - all.weightBytes));
  const gpuLayersForFullBatch = cpuOnly
    ? undefined
    : gpuLayersFor(shape, { ...fit, contextSize: wantedContext, sequences: input.maxSequences });

  if (contextSize < minContext) {
    const oneSequence = gpu.weightBytes + reserve + perSequence(gpu, minContext);
    const offload = cpuOnly ? undefined : gpuLayersFor(shape, { ...fit, contextSize: minContext, sequences: 1 });
    throw new MemoryPlanError(
      "insufficient_memory",
      `the model does not fit the memory budget: weights ${formatBytes(gpu.weightBytes)} + reserve ${formatBytes(reserve)} ` +
        `+ one sequence of ${minContext} tokens (${formatBytes(perSequence(gpu, minContext))}) = ` +
        `${formatBytes(oneSequence)} > ${budgetName} ${formatBytes(budget)}. ` +
        `Raise ${budgetName} to ${formatBytes(oneSequence)}` +
        (shape.modelBytes > oneSequence - budget
          ? `, or use a smaller quantization (weights of at most ${formatBytes(shape.modelBytes - (oneSequence - budget))})`
          : "") +
        (offload !== undefined && offload < gpuLayers
          ? `, or keep layers in system memory: DOCKET_GPU_LAYERS=${describeGpuLayers(shape, offload)}`
          : ""),
    );
  }
  if (sequences < input.maxSequences) {
    notes.push(
      `${sequences} of DOCKET_MAX_BATCH=${input.maxSequences} sequences fit at ${contextSize} tokens: ` +
        `weights take ${formatBytes(gpu.weightBytes)} of ${formatBytes(budget)}`,
    );
    const ways = [
      ...(gpuLayersForFullBatch !== undefined && gpuLayersForFullBatch < gpuLayers
        ? [`DOCKET_GPU_LAYERS=${describeGpuLayers(shape, gpuLayersForFullBatch)}`]
        : []),
      `a quantization of at most ${formatBytes(maxModelBytesForFullBatch)}`,
      `${budgetName} of ${formatBytes(wantedBytes)}`,
    ];
    notes.push(
      `for ${input.maxSequences} × ${wantedContext} (${formatBytes(fullBatchState)} of KV cache and state): ${ways.join(", or ")}`,
    );
  }
  if (contextSize < wantedContext)
    notes.push(`context reduced from ${wantedContext} to ${contextSize} tokens to fit one sequence`);
  if (shape.recurrentLayers > 0 && shape.attentionLayers > 0) {
    notes.push(
      `hybrid model: ${shape.attentionLayers} of ${shape.layers} layers keep a KV cache, ${shape.recurrentLayers} keep a fixed recurrent state`,
    );
  }
  const gpuContextBytes = sequences * perSequence(gpu, contextSize);
  return {
    sequences,
    contextSize,
    budgetBytes: budget,
    gpuLayers,
    totalLayers,
    engineGpuLayers:
      asked !== "auto" ? Math.min(asked, totalLayers) : !cpuOnly && gpuLayers < totalLayers ? gpuLayers : undefined,
    cpuOnly,
    modelBytes: shape.modelBytes,
    gpuWeightBytes: gpu.weightBytes,
    reserveBytes: reserve,
    gpuContextBytes,
    totalBytes: gpu.weightBytes + reserve + gpuContextBytes,
    systemBytes: system.weightBytes + sequences * perSequence(system, contextSize),
    kvBytesPerToken: shape.kvBytesPerToken,
    recurrentStateBytesPerSequence: shape.recurrentStateBytesPerSequence,
    kvCacheBytes: sequences * contextSize * shape.kvBytesPerToken,
    recurrentStateBytes: sequences * shape.recurrentStateBytesPerSequence,
    wantedBytes,
    gpuLayersForFullBatch,
    maxModelBytesForFullBatch,
    shape,
    notes,
  };
}

/** One line for logs. */
export function describePlan(p: MemoryPlan): string {
  const where = p.cpuOnly ? "CPU only" : `${p.gpuLayers} of ${p.totalLayers} layers on the GPU`;
  const head =
    `${p.sequences} sequences × ${p.contextSize} tokens, ${where}: weights ${formatBytes(p.gpuWeightBytes)} + ` +
    `KV cache and state ${formatBytes(p.gpuContextBytes)} (KV ${formatBytes(p.kvBytesPerToken)}/token, ` +
    `recurrent state ${formatBytes(p.recurrentStateBytesPerSequence)}/sequence, whole model) + reserve ${formatBytes(p.reserveBytes)} = ` +
    `${formatBytes(p.totalBytes)} of ${formatBytes(p.budgetBytes)}` +
    (p.systemBytes > 0 ? `; ${formatBytes(p.systemBytes)} in system memory` : "");
  return p.notes.length ? `${head}; ${p.notes.join("; ")}` : head;
}

/** Sequences kept for the interactive lane on top of the batch (none when the context has one). */
export const INTERACTIVE_RESERVE = 1;

/**
 * Each worker's budget: DOCKET_GPU_MEMORY_BYTES shared by the DOCKET_WORKERS workers `npm start` runs on the host,
 * and how messages name it.
 */
export function workerBudget(config: Pick<Config, "DOCKET_GPU_MEMORY_BYTES" | "DOCKET_WORKERS">) {
  const workers = config.DOCKET_WORKERS;
  return {
    budgetBytes: Math.floor(config.DOCKET_GPU_MEMORY_BYTES / workers),
    ...(workers > 1
      ? { budgetName: `DOCKET_GPU_MEMORY_BYTES / DOCKET_WORKERS (${formatBytes(config.DOCKET_GPU_MEMORY_BYTES)} / ${workers})` }
      : {}),
  };
}

/** The worker's planner settings from its config, but the budget (workerBudget). */
export function planSettings(
  config: Pick<Config, "DOCKET_MAX_BATCH" | "DOCKET_CONTEXT_SIZE" | "DOCKET_GPU_LAYERS" | "DOCKET_GPU">,
): Omit<PlanMemoryInput, "budgetBytes" | "fileInfo" | "shape"> {
  return {
    maxSequences: config.DOCKET_MAX_BATCH + INTERACTIVE_RESERVE,
    contextSize: config.DOCKET_CONTEXT_SIZE,
    gpuLayers: config.DOCKET_GPU_LAYERS,
    cpuOnly: config.DOCKET_GPU === "false",
  };
}

/** Reads a GGUF file's header (not its weights) and plans for it: what the worker calls at start. */
export async function planMemoryForModel(
  modelPath: string,
  options: Omit<PlanMemoryInput, "fileInfo" | "shape">,
): Promise<MemoryPlan> {
  const fileInfo = await readGgufFileInfo(modelPath, { logWarnings: false, ignoreKeys: ["tokenizer.ggml.merges"] });
  const fileBytes = (await stat(modelPath)).size;
  let shape: ModelShape;
  try {
    shape = modelShape(fileInfo, { kvCacheType: options.kvCacheType ?? "f16", fileBytes });
  } catch (err) {
    if (err instanceof ModelShapeError) throw new MemoryPlanError(err.code, err.message);
    throw err;
  }
  return planMemory({ ...options, shape });
}
