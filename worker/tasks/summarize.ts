import { documentBlock, partialsBlock, plainText, type TaskDefinition } from "./types.ts";

const SYSTEM =
  "You summarize documents accurately and concisely. Keep names, dates, amounts and obligations. Do not invent facts.";

export const summarize: TaskDefinition = {
  longDocument: "map-reduce",
  build: ({ job, document, part }) => ({
    systemPrompt: SYSTEM,
    prompt: `Summarize the following document${part ? " part" : ""}.\n\n${documentBlock(job.input.title, document, part)}`,
    read: plainText,
  }),
  reduce: (job, partials) => ({
    systemPrompt: SYSTEM,
    prompt:
      `Below are summaries of consecutive parts of one document${job.input.title ? ` titled ${JSON.stringify(job.input.title)}` : ""}. ` +
      `Write one summary of the whole document.\n\n${partialsBlock(partials)}`,
    read: plainText,
  }),
};
