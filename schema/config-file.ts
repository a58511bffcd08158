import { parse, YAMLParseError } from "yaml";

/**
 * docket.yaml: one config file in the deployment plan's own shape,
 *
 *   service: {name: 'LLM-Service', port: 8080, workers: 4, max_batch_size: 32}
 *   model: {path: '/models/qwen3-next-80b', quantization: '4bit', gpu_memory: 50GB, context_window: 8192}
 *
 * Each key maps onto one of docket's variables (schema/config.ts validates the value as it validates the
 * variable); a variable set in the environment wins over the file. Unknown keys are refused.
 */
export const FILE_KEYS = {
  "service.name": "DOCKET_SERVICE_NAME",
  "service.port": "DOCKET_PORT",
  "service.workers": "DOCKET_WORKERS",
  "service.max_batch_size": "DOCKET_MAX_BATCH",
  "model.path": "DOCKET_MODEL",
  "model.name": "DOCKET_MODEL_NAME",
  "model.quantization": "DOCKET_QUANTIZATION",
  "model.gpu_memory": "DOCKET_GPU_MEMORY_BYTES",
  "model.context_window": "DOCKET_CONTEXT_SIZE",
  "model.gpu_layers": "DOCKET_GPU_LAYERS",
} as const;
export type FileKey = keyof typeof FILE_KEYS;

/** The file read `npm start`, the services and the CLI look for in their working directory. */
export const DEFAULT_CONFIG_FILE = "docket.yaml";

export class ConfigFileError extends Error {
  readonly code = "invalid_config";
}

export interface ConfigFileValues {
  /** Variable name → value as text, as the environment would hold it. */
  vars: Record<string, string>;
  /** Variable name → the file key it came from, for error messages. */
  keys: Record<string, FileKey>;
}

/** Parses a docket.yaml text into variables; `source` names the file in error messages. */
export function parseConfigFile(text: string, source: string): ConfigFileValues {
  let doc: unknown;
  try {
    doc = parse(text, { uniqueKeys: true });
  } catch (err) {
    if (err instanceof YAMLParseError) throw new ConfigFileError(`${source}: not valid YAML: ${err.message}`);
    throw err;
  }
  const out: ConfigFileValues = { vars: {}, keys: {} };
  if (doc === null || doc === undefined) return out;
  const known = Object.keys(FILE_KEYS).join(", ");
  if (typeof doc !== "object" || Array.isArray(doc))
    throw new ConfigFileError(`${source}: expected sections service: and model:`);
  for (const [section, body] of Object.entries(doc)) {
    if (section !== "service" && section !== "model") {
      throw new ConfigFileError(`${source}: unknown section ${section} (known keys: ${known})`);
    }
    if (body === null || typeof body !== "object" || Array.isArray(body)) {
      throw new ConfigFileError(`${source}: ${section} must be a mapping of keys (known keys: ${known})`);
    }
    for (const [name, value] of Object.entries(body)) {
      const key = `${section}.${name}`;
      if (!(key in FILE_KEYS)) throw new ConfigFileError(`${source}: unknown key ${key} (known keys: ${known})`);
      if (value === null || typeof value === "object") {
        throw new ConfigFileError(`${source}: ${key} needs a value (a number or a string), got ${JSON.stringify(value)}`);
      }
      const variable = FILE_KEYS[key as FileKey];
      out.vars[variable] = String(value);
      out.keys[variable] = key as FileKey;
    }
  }
  return out;
}
