import { DOCUMENT_SYSTEM, documentTask, partialsBlock, plainText, type TaskDefinition } from "./types.ts";

const INSTRUCTION = "Summarize the document above accurately and concisely. Keep names, dates, amounts and obligations.";

export const summarize: TaskDefinition = {
  longDocument: "map-reduce",
  build: ({ job, document, part }) => ({
    ...documentTask(job, document, part, part ? INSTRUCTION.replace("document", "document part") : INSTRUCTION),
    read: plainText,
  }),
  reduce: (job, partials) => ({
    systemPrompt: DOCUMENT_SYSTEM,
    prompt:
      `Below are summaries of consecutive parts of one document${job.input.title ? ` titled ${JSON.stringify(job.input.title)}` : ""}. ` +
      `Write one summary of the whole document.\n\n${partialsBlock(partials)}`,
    read: plainText,
  }),
};
