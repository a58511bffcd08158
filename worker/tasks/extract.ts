import type { JobMessage } from "../../schema/job.ts";
import { jsonSchemaIssue } from "../../schema/json-schema.ts";
import { mergeExtractions } from "../chunking.ts";
import { JobFailure } from "../failure.ts";
import { PRESETS } from "./presets.ts";
import { documentTask, type TaskDefinition } from "./types.ts";

/** Bounds docket adds where a schema sets none: a grammar limits tokens, not length. */
export const DEFAULT_MAX_LENGTH = 500;
export const DEFAULT_MAX_ITEMS = 20;

/** The schema with maxLength on every string and maxItems on every array that lacks one. */
export function boundSchema(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(boundSchema);
  if (typeof schema !== "object" || schema === null) return schema;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(schema)) {
    out[k] = k === "enum" || k === "const" || k === "required" ? v : boundSchema(v);
  }
  const types = Array.isArray(out.type) ? out.type : [out.type];
  if (types.includes("string") && out.maxLength === undefined && out.enum === undefined && out.const === undefined) {
    out.maxLength = DEFAULT_MAX_LENGTH;
  }
  if (types.includes("array") && out.maxItems === undefined) out.maxItems = DEFAULT_MAX_ITEMS;
  return out;
}

export function extractionSchema(job: JobMessage): Record<string, unknown> {
  const schema = job.params.schema ?? (job.params.preset ? PRESETS[job.params.preset] : undefined);
  if (!schema) throw new JobFailure("invalid_params", "params.schema: extract needs a JSON schema or params.preset");
  // Jobs published straight to NATS skip the producer's check: the same check here, then the grammar compiler's.
  const issue = jsonSchemaIssue(schema);
  if (issue) throw new JobFailure("invalid_params", `params.schema is not a valid JSON schema: ${issue.at}: ${issue.message}`);
  return boundSchema(schema) as Record<string, unknown>;
}

/** Long documents: extract from each chunk, then merge the results deterministically (see mergeExtractions). */
export const extract: TaskDefinition = {
  longDocument: "map-reduce",
  build: ({ job, document, part }) => {
    const schema = extractionSchema(job);
    return {
      ...documentTask(
        job,
        document,
        part,
        `Extract structured data from the document above as JSON matching this JSON schema; use only facts in the document.\nJSON schema:\n${JSON.stringify(schema)}`,
      ),
      jsonSchema: schema,
      read(text) {
        try {
          return { text, json: JSON.parse(text) };
        } catch {
          // The grammar makes every prefix valid, so only a cut-off generation can fail to parse.
          throw new JobFailure(
            "output_truncated",
            "generation reached maxTokens before the JSON result was complete; raise params.maxTokens or bound the schema (maxLength, maxItems)",
          );
        }
      },
    };
  },
  merge: (job, parts) => mergeExtractions(parts, extractionSchema(job)),
};
