import { DOCUMENT_SYSTEM, documentTask, partialsBlock, plainText, type TaskDefinition } from "./types.ts";

const INSTRUCTION =
  "Answer the question below using only what the document above says. If it does not say, answer that it does not.";

export const ask: TaskDefinition = {
  longDocument: "map-reduce",
  build: ({ job, document, part }) => ({
    ...documentTask(job, document, part, `${INSTRUCTION}\n\nQuestion: ${job.params.question ?? ""}`),
    read: plainText,
  }),
  reduce: (job, partials) => ({
    systemPrompt: DOCUMENT_SYSTEM,
    prompt:
      "Below are answers to one question, each from a different part of one document. Combine them into one answer; " +
      `ignore parts that say the document does not tell.\n\nQuestion: ${job.params.question ?? ""}\n\n${partialsBlock(partials)}`,
    read: plainText,
  }),
};
