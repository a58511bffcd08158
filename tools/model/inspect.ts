import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { GgufFileType, GgufInsights, readGgufFileInfo } from "node-llama-cpp";
import { modelShape } from "../../worker/model-shape.ts";
import { DEFAULT_RESERVE_BYTES } from "../../worker/planner.ts";

export interface ModelSummary {
  path: string;
  name: string;
  architecture: string;
  /** File size in bytes. */
  sizeBytes: number;
  /** GGUF general.file_type, e.g. MOSTLY_Q4_K_M. */
  quantization: string;
  parameters: number;
  layers: number;
  trainContextSize: number | undefined;
  hybrid: boolean;
}

export interface MemoryPlanRequest {
  /** Memory the worker may use, in bytes (DOCKET_GPU_MEMORY_BYTES). */
  budget: number;
  /** Tokens per sequence (DOCKET_CONTEXT_SIZE). */
  contextSize: number;
  /** Sequences wanted (DOCKET_MAX_BATCH). */
  sequences: number;
}

export interface MemoryPlan extends MemoryPlanRequest {
  modelBytes: number;
  /** KV cache, recurrent state and compute buffers for `sequences` × `contextSize`. */
  contextBytes: number;
  totalBytes: number;
  fits: boolean;
  /** Most sequences of `contextSize` that fit the budget beside the model (0: the model alone does not fit). */
  maxSequences: number;
}

export async function readModel(path: string): Promise<{ summary: ModelSummary; insights: GgufInsights }> {
  const info = await readGgufFileInfo(path, { logWarnings: false });
  const insights = await GgufInsights.from(info);
  const general = info.metadata.general;
  const fileType = general?.file_type;
  const summary: ModelSummary = {
    path,
    name: String(general?.name ?? path.split("/").at(-1)),
    architecture: String(general?.architecture ?? "unknown"),
    sizeBytes: (await stat(path)).size,
    quantization: fileType !== undefined ? (GgufFileType[fileType] ?? String(fileType)) : "unknown",
    parameters: insights.totalParameters,
    layers: Number((info.architectureMetadata as { block_count?: number }).block_count ?? insights.totalLayers - 1),
    trainContextSize: insights.trainContextSize,
    hybrid: insights.isHybrid || insights.isRecurrent,
  };
  return { summary, insights };
}

/**
 * A memory plan for S sequences × context from GGUF metadata, with the worker's planner model
 * (worker/planner.ts): weights + KV cache per token + recurrent state per sequence + reserve, against
 * the budget, and the most sequences of that context that fit.
 */
export function estimateMemoryPlan(insights: GgufInsights, r: MemoryPlanRequest): MemoryPlan {
  const shape = modelShape(insights.ggufFileInfo);
  const contextSize = Math.min(r.contextSize, shape.trainContextSize ?? r.contextSize);
  const perSequence = contextSize * shape.kvBytesPerToken + shape.recurrentStateBytesPerSequence;
  const contextBytes = r.sequences * perSequence + DEFAULT_RESERVE_BYTES;
  const modelBytes = shape.modelBytes;
  const room = r.budget - modelBytes - DEFAULT_RESERVE_BYTES;
  const maxSequences = room <= 0 ? 0 : Math.floor(room / perSequence);
  const totalBytes = modelBytes + contextBytes;
  return { ...r, contextSize, modelBytes, contextBytes, totalBytes, fits: totalBytes <= r.budget, maxSequences };
}

export interface ListedModel {
  file: string;
  sizeBytes: number;
  summary?: ModelSummary;
  /** Why the file could not be read as GGUF. */
  error?: string;
}

/** GGUF files in `dir` (not recursing), with their metadata when readable. Partial downloads are skipped. */
export async function listModels(dir: string): Promise<ListedModel[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
  const out: ListedModel[] = [];
  for (const name of names.filter((n) => n.endsWith(".gguf")).sort()) {
    const file = join(dir, name);
    const { size } = await stat(file);
    try {
      out.push({ file, sizeBytes: size, summary: (await readModel(file)).summary });
    } catch (err) {
      out.push({ file, sizeBytes: size, error: (err as Error).message });
    }
  }
  return out;
}

export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i === 0 ? 0 : 2)} ${units[i]}`;
}
