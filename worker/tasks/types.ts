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
  /** The document text (inline or fetched from the object store), or one chunk of it. */
  document: string;
  /** Set when the document is one chunk of a longer one (map step of map-reduce). */
  part?: { index: number; count: number };
}

export type TaskBuilder = (ctx: TaskContext) => TaskPlan;

/**
 * A task and what it does with a document longer than the context under overflow "chunk":
 * - "map-reduce": run on each chunk, then `reduce` the partial texts (recursively) or `merge` the partial JSON;
 * - "truncate": run once on the head and tail of the document.
 */
export interface TaskDefinition {
  build: TaskBuilder;
  longDocument: "map-reduce" | "truncate";
  /** Combines partial answers into one (summarize, ask). */
  reduce?: (job: JobMessage, partials: readonly string[]) => TaskPlan;
  /** Combines partial JSON results without a model call (extract). */
  merge?: (job: JobMessage, parts: readonly unknown[]) => unknown;
}

export const plainText = (text: string) => ({ text: text.trim() });

export function documentBlock(title: string | undefined, document: string, part?: TaskContext["part"]): string {
  const where = part ? `Part ${part.index + 1} of ${part.count} of a longer document.\n` : "";
  return `${title ? `Title: ${title}\n` : ""}${where}<document>\n${document}\n</document>`;
}

/** The partial results of the map step, as the reduce prompt shows them. */
export function partialsBlock(partials: readonly string[]): string {
  return partials.map((p, i) => `<part n="${i + 1}">\n${p}\n</part>`).join("\n");
}
