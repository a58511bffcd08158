import { documentBlock, plainText, type TaskBuilder } from "./types.ts";

export const summarize: TaskBuilder = ({ job, document }) => ({
  systemPrompt:
    "You summarize documents accurately and concisely. Keep names, dates, amounts and obligations. Do not invent facts.",
  prompt: `Summarize the following document.\n\n${documentBlock(job.input.title, document)}`,
  read: plainText,
});
