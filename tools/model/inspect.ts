import { existsSync } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { GgufInsights, readGgufFileInfo } from "node-llama-cpp";
import { modelShape } from "../../worker/model-shape.ts";
import { DEFAULT_MODEL_CACHE_DIR, demoModelFileName, TEST_MODEL } from "./demo-model.ts";
import { PARTIAL_SUFFIX } from "./pull.ts";
import { quantName } from "./quants.ts";

export interface ModelSummary {
  path: string;
  name: string;
  architecture: string;
  /** File size in bytes. */
  sizeBytes: number;
  /** From general.file_type: Q4_K_M, IQ4_XS, F16, ... */
  quantization: string;
  parameters: number;
  layers: number;
  attentionLayers: number;
  recurrentLayers: number;
  /** KV cache per token of context at f16, all layers. */
  kvBytesPerToken: number;
  /** Fixed state per sequence of the recurrent layers. */
  recurrentStateBytesPerSequence: number;
  trainContextSize: number | undefined;
}

export async function readModel(path: string): Promise<ModelSummary> {
  const info = await readGgufFileInfo(path, { logWarnings: false });
  const insights = await GgufInsights.from(info);
  const shape = modelShape(info);
  return {
    path,
    name: String(info.metadata.general?.name ?? path.split("/").at(-1)),
    architecture: shape.architecture || "unknown",
    sizeBytes: (await stat(path)).size,
    quantization: quantName(info.metadata.general?.file_type),
    parameters: insights.totalParameters,
    layers: shape.layers,
    attentionLayers: shape.attentionLayers,
    recurrentLayers: shape.recurrentLayers,
    kvBytesPerToken: shape.kvBytesPerToken,
    recurrentStateBytesPerSequence: shape.recurrentStateBytesPerSequence,
    trainContextSize: insights.trainContextSize,
  };
}

/** Why a model is in the list: the setting that names it, the models folder, or the generated demo model. */
export type ModelRole = "DOCKET_MODEL" | "DOCKET_FALLBACK_MODEL" | "DOCKET_MODELS_DIR" | "demo";

export interface ListedModel {
  role: ModelRole;
  /** A local path, or the hf: URI / URL a worker downloads on its first start. */
  where: string;
  summary?: ModelSummary;
  /** Not a local file yet, or a remark on its use. */
  note?: string;
  /** Why the file could not be read as GGUF. */
  error?: string;
}

export interface ListOptions {
  /** DOCKET_MODELS_DIR. */
  dir: string;
  /** DOCKET_MODEL and DOCKET_FALLBACK_MODEL. */
  model?: string | undefined;
  fallback?: string | undefined;
  /** Where the generated demo model is cached (default <repo>/.cache/models). */
  demoDir?: string;
}

const isRemote = (m: string) => /^(hf:|huggingface:|https?:\/\/)/.test(m);

async function describe(role: ModelRole, where: string, note?: string): Promise<ListedModel> {
  try {
    return { role, where, summary: await readModel(where), ...(note ? { note } : {}) };
  } catch (err) {
    return { role, where, error: (err as Error).message };
  }
}

/**
 * Every model docket can use here: DOCKET_MODEL and DOCKET_FALLBACK_MODEL (downloaded on a worker's first start
 * when they are hf: URIs or URLs), the GGUF files in DOCKET_MODELS_DIR (partial downloads skipped), and the
 * generated demo model `npm start` runs when DOCKET_MODEL is unset.
 */
export async function listModels(o: ListOptions): Promise<ListedModel[]> {
  const out: ListedModel[] = [];
  const seen = new Set<string>();
  for (const [role, m] of [
    ["DOCKET_MODEL", o.model],
    ["DOCKET_FALLBACK_MODEL", o.fallback],
  ] as const) {
    if (!m) continue;
    if (isRemote(m)) out.push({ role, where: m, note: "downloaded into DOCKET_MODELS_DIR on the worker's first start" });
    else if (!existsSync(m)) out.push({ role, where: m, error: "no such file" });
    else {
      seen.add(resolve(m));
      out.push(await describe(role, m));
    }
  }
  let names: string[] = [];
  try {
    names = await readdir(o.dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  for (const name of names.filter((n) => n.endsWith(".gguf")).sort()) {
    const file = join(o.dir, name);
    if (seen.has(resolve(file)) || existsSync(file + PARTIAL_SUFFIX)) continue;
    out.push(await describe("DOCKET_MODELS_DIR", file));
  }
  const demo = join(o.demoDir ?? DEFAULT_MODEL_CACHE_DIR, demoModelFileName(TEST_MODEL));
  const use = o.model ? "" : "npm start runs it (DOCKET_MODEL is unset); ";
  if (seen.has(resolve(demo))) return out;
  out.push(
    existsSync(demo)
      ? await describe("demo", demo, `${use}random weights: its output is noise`)
      : { role: "demo", where: demo, note: `${use}not generated yet: npm start or npm test generates it (random weights)` },
  );
  return out;
}
