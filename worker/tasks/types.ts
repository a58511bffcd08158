import type { ChatHistoryItem } from "node-llama-cpp";
import type { JobMessage } from "../../schema/job.ts";

/** What a task turns a job into: the prompt to run and how to read the answer. */
export interface TaskPlan {
  systemPrompt: string;
  history?: ChatHistoryItem[];
  prompt: string;
  /** JSON schema the output is constrained to (extract, classify). */
  jsonSchema?: Record<string, unknown>;
  /** Turns the model's text into the result; throws JobFailure when it cannot. */
  read(text: string): { text: string; json?: unknown };
}

export interface TaskContext {
  job: JobMessage;
  /** The document text (inline or fetched from the object store). */
  document: string;
}

export type TaskBuilder = (ctx: TaskContext) => TaskPlan;

export const plainText = (text: string) => ({ text: text.trim() });

export function documentBlock(title: string | undefined, document: string): string {
  return `${title ? `Title: ${title}\n` : ""}<document>\n${document}\n</document>`;
}
