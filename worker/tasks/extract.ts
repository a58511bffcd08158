import { JobFailure } from "../failure.ts";
import { documentBlock, type TaskBuilder } from "./types.ts";

export const extract: TaskBuilder = ({ job, document }) => {
  const schema = job.params.schema;
  if (!schema) throw new JobFailure("invalid_params", "params.schema: extract needs a JSON schema");
  return {
    systemPrompt: "You extract structured data from documents as JSON matching the given schema. Use only facts in the document.",
    prompt: `JSON schema:\n${JSON.stringify(schema)}\n\n${documentBlock(job.input.title, document)}`,
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
};
