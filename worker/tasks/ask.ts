import { documentBlock, partialsBlock, plainText, type TaskDefinition } from "./types.ts";

const SYSTEM =
  "You answer questions about a document using only what the document says. If it does not say, answer that it does not.";

export const ask: TaskDefinition = {
  longDocument: "map-reduce",
  build: ({ job, document, part }) => ({
    systemPrompt: SYSTEM,
    prompt: `${documentBlock(job.input.title, document, part)}\n\nQuestion: ${job.params.question ?? ""}`,
    read: plainText,
  }),
  reduce: (job, partials) => ({
    systemPrompt: SYSTEM,
    prompt:
      "Below are answers to one question, each from a different part of one document. Combine them into one answer; " +
      `ignore parts that say the document does not tell.\n\nQuestion: ${job.params.question ?? ""}\n\n${partialsBlock(partials)}`,
    read: plainText,
  }),
};
