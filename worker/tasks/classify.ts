import { JobFailure } from "../failure.ts";
import { documentTask, type TaskDefinition } from "./types.ts";

/** A long document is classified on its head and tail: what a document is shows at its start and end. */
export const classify: TaskDefinition = {
  longDocument: "truncate",
  build: ({ job, document }) => {
    const labels = job.params.labels;
    if (!labels || labels.length < 2) throw new JobFailure("invalid_params", "params.labels: classify needs at least 2 labels");
    return {
      ...documentTask(
        job,
        document,
        undefined,
        `Classify the document above. Answer with exactly one of the allowed labels: ${labels.map((l) => JSON.stringify(l)).join(", ")}`,
      ),
      jsonSchema: { enum: labels },
      read(text) {
        let label: unknown;
        try {
          label = JSON.parse(text);
        } catch {
          label = undefined;
        }
        if (typeof label !== "string" || !labels.includes(label)) {
          throw new JobFailure("output_truncated", "the model did not produce one of the labels; raise params.maxTokens");
        }
        return { text: label, json: label };
      },
    };
  },
};
