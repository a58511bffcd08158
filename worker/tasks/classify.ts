import { JobFailure } from "../failure.ts";
import { documentBlock, type TaskBuilder } from "./types.ts";

export const classify: TaskBuilder = ({ job, document }) => {
  const labels = job.params.labels;
  if (!labels || labels.length < 2) throw new JobFailure("invalid_params", "params.labels: classify needs at least 2 labels");
  return {
    systemPrompt: "You classify documents. Answer with exactly one of the allowed labels.",
    prompt: `Allowed labels: ${labels.map((l) => JSON.stringify(l)).join(", ")}\n\n${documentBlock(job.input.title, document)}`,
    jsonSchema: { enum: labels },
    read(text) {
      const label = JSON.parse(text) as unknown;
      if (typeof label !== "string" || !labels.includes(label)) {
        throw new JobFailure("output_truncated", "the model did not produce one of the labels");
      }
      return { text: label, json: label };
    },
  };
};
