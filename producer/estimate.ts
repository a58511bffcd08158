import type { JobMessage, JobParams } from "../schema/job.ts";
import type { DocumentRecords } from "./stores/documents.ts";

/** What a job is expected to cost, in tokens, before it runs: queue ETAs and token quotas read it. */
export interface TokenEstimate {
  /** The document and the task's own text, at BYTES_PER_TOKEN. */
  promptTokens: number;
  /** Its token budget: params.maxTokens, else DOCKET_MAX_TOKENS (an upper bound: generation may stop before). */
  maxTokens: number;
}

/** About 4 bytes of text per token for English prose in the BPE vocabularies of current models. */
export const BYTES_PER_TOKEN = 4;
/** The instructions a task wraps around the document (worker/tasks): a few dozen tokens. */
const TASK_PROMPT_TOKENS = 40;

const tokensOf = (bytes: number) => Math.ceil(bytes / BYTES_PER_TOKEN);

/** Bytes of the params that go into the prompt: the question, the conversation, the labels, the schema. */
function paramBytes(p: JobParams): number {
  let n = (p.question?.length ?? 0) + (p.labels?.join(" ").length ?? 0);
  for (const m of p.messages ?? []) n += m.content.length;
  if (p.schema) n += JSON.stringify(p.schema).length;
  return n;
}

/**
 * Estimates a job's tokens from its message before it is claim-checked (the text is still inline) or, for a job
 * on an uploaded document, from the document's size.
 */
export class TokenEstimator {
  constructor(
    private readonly documents: Pick<DocumentRecords, "get">,
    readonly defaultMaxTokens: number,
  ) {}

  estimate(msg: Pick<JobMessage, "input" | "params">): TokenEstimate {
    const { input, params } = msg;
    const documentBytes =
      input.text !== undefined
        ? Buffer.byteLength(input.text)
        : input.documentId !== undefined
          ? (this.documents.get(input.documentId)?.bytes ?? 0)
          : 0;
    return {
      promptTokens: TASK_PROMPT_TOKENS + tokensOf(documentBytes + paramBytes(params)),
      maxTokens: this.maxTokens(params),
    };
  }

  maxTokens(params: JobParams): number {
    return params.maxTokens ?? this.defaultMaxTokens;
  }
}

export const totalTokens = (e: TokenEstimate) => e.promptTokens + e.maxTokens;
