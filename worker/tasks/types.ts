import type { ChatHistoryItem } from "node-llama-cpp";
import type { JobMessage } from "../../schema/job.ts";

/** What a task turns a job into: the prompt to run and how to read the answer. */
export interface TaskPlan {
  systemPrompt: string;
  history?: ChatHistoryItem[];
  prompt: string;
  /**
   * The head of this prompt that depends only on the document (the system text and the document, rendered
   * as a prompt of its own): every task on the same document starts with these tokens, so the worker
   * evaluates them once and reuses the state (worker/prefix-cache.ts). Unset: nothing to share.
   */
  shared?: Pick<TaskPlan, "systemPrompt" | "prompt">;
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

/**
 * The system text of every task on a document. One text for all tasks, and the document before the
 * instruction, so that a document's evaluated prompt is a prefix every task on it can reuse (issue 10).
 */
export const DOCUMENT_SYSTEM =
  "You analyse documents accurately. Use only what the document says; do not invent facts. Follow the instruction given after the document.";

/** A task's plan on a document: the shared head (system text, document), then the task's instruction. */
export function documentTask(
  job: JobMessage,
  document: string,
  part: TaskContext["part"],
  instruction: string,
): Pick<TaskPlan, "systemPrompt" | "prompt" | "shared"> {
  const block = documentBlock(job.input.title, document, part);
  return {
    systemPrompt: DOCUMENT_SYSTEM,
    prompt: `${block}\n\n${instruction}`,
    shared: { systemPrompt: DOCUMENT_SYSTEM, prompt: block },
  };
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
