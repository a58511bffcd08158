import { documentBlock, plainText, type TaskBuilder } from "./types.ts";

export const ask: TaskBuilder = ({ job, document }) => ({
  systemPrompt:
    "You answer questions about a document using only what the document says. If it does not say, answer that it does not.",
  prompt: `${documentBlock(job.input.title, document)}\n\nQuestion: ${job.params.question ?? ""}`,
  read: plainText,
});
