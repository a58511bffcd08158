import { existsSync, statSync } from "node:fs";
import { readdir } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { GgufFileType, readGgufFileInfo, resolveModelFile } from "node-llama-cpp";
import type { Logger } from "../runtime/log.ts";
import { toModelName } from "../schema/model.ts";

export interface ResolveModelOptions {
  /**
   * DOCKET_MODEL: a GGUF path, a folder of GGUF files, an https URL or an hf: URI. `npm start` sets it to the
   * generated demo model when it is unset; the worker itself never generates a model (that code is a tool,
   * tools/model/).
   */
  model: string | undefined;
  /** DOCKET_QUANTIZATION: the quantization the model must have ("4bit", "Q4_K_M"); unset: any. */
  quantization?: string | undefined;
  /** Where downloaded models are kept. */
  directory?: string;
  /** Overrides https://huggingface.co (a mirror, or a local server in tests). */
  huggingFaceEndpoint?: string;
  log: Logger;
}

export class ModelNotFoundError extends Error {
  readonly code = "model_not_found";
}

export class ModelQuantizationError extends Error {
  readonly code = "model_quantization_mismatch";
}

/** `MOSTLY_Q4_K_M` → `Q4_K_M`. */
const typeName = (fileType: number | undefined) =>
  fileType === undefined ? "unknown" : (GgufFileType[fileType] ?? String(fileType)).replace(/^MOSTLY_|^ALL_/, "");

/** Bits per weight a GGUF file type is named for: Q4_K_M, IQ4_XS, MXFP4_MOE → 4; F16 → 16. */
export function quantizationBits(type: string): number | undefined {
  const t = type.toUpperCase();
  if (t.startsWith("MXFP4")) return 4;
  if (t === "F16" || t === "BF16") return 16;
  if (t === "F32") return 32;
  const m = /^(?:I?Q|TQ)(\d)/.exec(t);
  return m ? Number(m[1]) : undefined;
}

/** Whether a file of GGUF type `type` has the quantization DOCKET_QUANTIZATION asks for ("4bit" or "Q4_K_M"). */
export function quantizationMatches(type: string, wanted: string): boolean {
  const bits = /^(\d{1,2})-?bits?$/i.exec(wanted.trim());
  if (bits) return quantizationBits(type) === Number(bits[1]);
  return (
    type.toUpperCase() ===
    wanted
      .trim()
      .toUpperCase()
      .replace(/^MOSTLY_/, "")
  );
}

/** The hf: tag a bit width stands for when the URI names none: llama.cpp's default mix of that width. */
const DEFAULT_TAG: Record<number, string> = { 4: "Q4_K_M", 5: "Q5_K_M", 6: "Q6_K", 8: "Q8_0", 16: "F16" };

/** hf:user/repo with no :tag and no file: the tag DOCKET_QUANTIZATION names. */
export function withQuantizationTag(uri: string, quantization: string | undefined): string {
  const m = /^(hf:|huggingface:)([^/:]+\/[^/:]+)$/.exec(uri);
  if (!m || !quantization) return uri;
  const bits = /^(\d{1,2})-?bits?$/i.exec(quantization.trim());
  const tag = bits ? DEFAULT_TAG[Number(bits[1])] : quantization.trim().toUpperCase();
  return tag ? `${uri}:${tag}` : uri;
}

/** A GGUF file's header without its tensor list and vocabulary. */
const readHeader = (path: string) =>
  readGgufFileInfo(path, {
    readTensorInfo: false,
    logWarnings: false,
    ignoreKeys: ["tokenizer.ggml.tokens", "tokenizer.ggml.merges", "tokenizer.ggml.token_type", "tokenizer.ggml.scores"],
  });

async function fileType(path: string): Promise<string> {
  return typeName((await readHeader(path)).metadata.general?.file_type);
}

/**
 * The model name a worker serves (schema/model.ts): DOCKET_MODEL_NAME when set, else the GGUF's general.name, else
 * the file name, through toModelName. Read from the header of the configured model, not of what loads: a worker
 * that falls back to DOCKET_FALLBACK_MODEL keeps serving the jobs of its name. An unreadable header (a damaged
 * file, which the ladder then replaces) falls back to the file name.
 */
export async function servedModelName(configured: string | undefined, path: string): Promise<string> {
  if (configured) return configured;
  const general = await readHeader(path).then(
    (info) => info.metadata.general?.name,
    () => undefined,
  );
  return toModelName(String(general ?? "")) || toModelName(basename(path)) || "model";
}

/** The one GGUF file in `folder` of the wanted quantization (the first part of a split file). */
async function pickFromFolder(folder: string, quantization: string | undefined): Promise<string> {
  const names = (await readdir(folder))
    .filter((n) => n.endsWith(".gguf") && !existsSync(join(folder, `${n}.ipull`)))
    .filter((n) => !/-\d{5}-of-\d{5}\.gguf$/.test(n) || /-00001-of-\d{5}\.gguf$/.test(n))
    .sort();
  const files = await Promise.all(names.map(async (n) => ({ path: join(folder, n), type: await fileType(join(folder, n)) })));
  const found = files.map((f) => `${basename(f.path)} (${f.type})`).join(", ") || "none";
  const matching = quantization ? files.filter((f) => quantizationMatches(f.type, quantization)) : files;
  if (matching.length === 1) return (matching[0] as { path: string }).path;
  const want = quantization ? ` of quantization ${quantization}` : "";
  if (matching.length === 0) {
    throw new ModelNotFoundError(`DOCKET_MODEL: no GGUF file${want} in the folder ${folder} (found: ${found})`);
  }
  throw new ModelNotFoundError(
    `DOCKET_MODEL: ${matching.length} GGUF files${want} in the folder ${folder} (${matching.map((f) => basename(f.path)).join(", ")}): ` +
      "name one of them, or set DOCKET_QUANTIZATION (model.quantization) to one GGUF type",
  );
}

/**
 * Turns DOCKET_MODEL into a local GGUF path: a folder yields its one file of DOCKET_QUANTIZATION, hf: URIs and
 * URLs are downloaded once (resumable). A file of another quantization than DOCKET_QUANTIZATION is refused.
 */
export async function resolveModel(o: ResolveModelOptions): Promise<{ path: string }> {
  if (!o.model) {
    throw new ModelNotFoundError(
      "DOCKET_MODEL is not set: set it to a GGUF file (DOCKET_MODEL=./models/model.gguf) or an hf: URI " +
        "(DOCKET_MODEL=hf:unsloth/Qwen3-Next-80B-A3B-Instruct-GGUF:Q4_K_M); `npm start` uses the generated demo model when it is unset",
    );
  }
  const remote = /^(hf:|huggingface:|https?:\/\/)/.test(o.model);
  if (!remote && !existsSync(o.model)) {
    throw new ModelNotFoundError(`DOCKET_MODEL: file not found at ${o.model}; set it to a GGUF file or an hf: URI`);
  }
  let path: string;
  if (!remote && statSync(o.model).isDirectory()) path = await pickFromFolder(o.model, o.quantization);
  // A local file as named, relative to the working directory (resolveModelFile would read it relative to `directory`).
  else if (!remote) path = resolve(o.model);
  else {
    path = await resolveModelFile(withQuantizationTag(o.model, o.quantization), {
      directory: o.directory ?? "./models",
      cli: false,
      ...(o.huggingFaceEndpoint ? { endpoints: { huggingFace: o.huggingFaceEndpoint } } : {}),
      onProgress: ({ downloadedSize, totalSize }) => {
        o.log.debug({ downloadedSize, totalSize }, "downloading model");
      },
    });
  }
  if (o.quantization) {
    const type = await fileType(path);
    if (!quantizationMatches(type, o.quantization)) {
      throw new ModelQuantizationError(
        `${basename(path)} is ${type}, not ${o.quantization} (DOCKET_QUANTIZATION, model.quantization): point DOCKET_MODEL at a ${o.quantization} file or change the quantization`,
      );
    }
  }
  return { path };
}
