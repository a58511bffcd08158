import { z } from "zod";

/**
 * Model names route jobs: a job naming model M goes to subject docket.jobs.<lane>.<task>.<M> and only workers
 * serving M pull it (docs/scaling.md). A name is therefore a NATS subject token and part of a consumer name:
 * lowercase letters, digits, '-' and '_', starting with a letter or digit, at most MODEL_NAME_MAX characters.
 */
export const MODEL_NAME_MAX = 64;
const MODEL_NAME = /^[a-z0-9][a-z0-9_-]*$/;

/**
 * A model name from any name a person or a file gives (a GGUF's general.name "Qwen3-Next-80B-A3B-Instruct", a
 * file name, an OpenAI request's `model`): lowercased, each run of other characters replaced by '-', trimmed of
 * leading and trailing '-' and '_', cut to MODEL_NAME_MAX. Empty when nothing usable is left.
 */
export function toModelName(raw: string): string {
  return raw
    .toLowerCase()
    .replace(/\.gguf$/, "")
    .replace(/[^a-z0-9_-]+/g, "-")
    .replace(/^[-_]+/, "")
    .slice(0, MODEL_NAME_MAX)
    .replace(/[-_]+$/, "");
}

export const isModelName = (v: string): boolean => v.length <= MODEL_NAME_MAX && MODEL_NAME.test(v);

const NAME_RULE = `lowercase letters, digits, '-' and '_' (at most ${MODEL_NAME_MAX})`;

/** A model name on the wire (job messages): exact, as a subject token must be. */
export const ModelName = z.string().refine(isModelName, `must be a model name: ${NAME_RULE}`);

/**
 * A model name in an API request: normalized by toModelName, so a GGUF's own name ("Qwen3-Next-80B-A3B") names the
 * worker that derived its name from it ("qwen3-next-80b-a3b").
 */
export const RequestedModel = z
  .string()
  .max(256)
  .transform(toModelName)
  .refine((v) => v.length > 0, `must name a model: ${NAME_RULE}`);
