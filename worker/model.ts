import { existsSync } from "node:fs";
import { resolveModelFile } from "node-llama-cpp";
import type { Logger } from "../runtime/log.ts";

export interface ResolveModelOptions {
  /**
   * DOCKET_MODEL: a GGUF path, an https URL or an hf: URI. `npm start` sets it to the generated demo model
   * when it is unset; the worker itself never generates a model (that code is a tool, tools/model/).
   */
  model: string | undefined;
  /** Where downloaded models are kept. */
  directory?: string;
  /** Overrides https://huggingface.co (a mirror, or a local server in tests). */
  huggingFaceEndpoint?: string;
  log: Logger;
}

export class ModelNotFoundError extends Error {
  readonly code = "model_not_found";
}

/** Turns DOCKET_MODEL into a local GGUF path, downloading hf: URIs and URLs once (resumable). */
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
  const path = await resolveModelFile(o.model, {
    directory: o.directory ?? "./models",
    cli: false,
    ...(o.huggingFaceEndpoint ? { endpoints: { huggingFace: o.huggingFaceEndpoint } } : {}),
    onProgress: ({ downloadedSize, totalSize }) => {
      o.log.debug({ downloadedSize, totalSize }, "downloading model");
    },
  });
  return { path };
}
