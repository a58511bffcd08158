import type { JobState } from "../schema/job.ts";
import type { BatchOutputLine } from "../schema/openai-batch.ts";
import type { OpenAIBatchRow } from "../schema/tables.ts";
import { jobErrorBody, toChatCompletion } from "./openai-chat.ts";
import { yieldToEventLoop } from "./pipeline.ts";
import type { BatchStore } from "./stores/batches.ts";
import type { BatchJobRow } from "./stores/jobs.ts";

/** Jobs rendered per page (one query, one chunk written). */
const PAGE = 500;

export type BatchPart = "output" | "error";

const STATES: Record<BatchPart, JobState[]> = { output: ["succeeded"], error: ["failed", "cancelled"] };

/**
 * Renders a finished batch's output file (succeeded requests, status 200 with the chat.completion) or error
 * file (refused request bodies first, then failed and cancelled jobs) from its jobs, a page at a time, in
 * submission order. Nothing random goes into a line, so every download of a file is byte-identical.
 */
export class BatchOutput {
  constructor(
    private readonly batches: BatchStore,
    private readonly defaultMaxTokens: number,
  ) {}

  /** Chunks of JSONL (each ends with a newline). */
  async *chunks(batch: Pick<OpenAIBatchRow, "id" | "rejected">, part: BatchPart): AsyncGenerator<string> {
    if (part === "error" && batch.rejected?.length) {
      for (let i = 0; i < batch.rejected.length; i += PAGE) {
        yield lines(batch.rejected.slice(i, i + PAGE).map(rejectedLine));
      }
    }
    let after = -1;
    for (;;) {
      const rows = this.batches.jobPage(batch.id, STATES[part], after, PAGE);
      if (rows.length === 0) return;
      after = rows.at(-1)?.batchIndex ?? after;
      yield lines(rows.map((r) => this.jobLine(r)));
      await yieldToEventLoop();
    }
  }

  /** Bytes and lines of a part, rendered once to size the file object. */
  async measure(batch: Pick<OpenAIBatchRow, "id" | "rejected">, part: BatchPart): Promise<{ bytes: number; lines: number }> {
    let bytes = 0;
    let count = 0;
    for await (const chunk of this.chunks(batch, part)) {
      bytes += Buffer.byteLength(chunk);
      count += chunk.split("\n").length - 1;
    }
    return { bytes, lines: count };
  }

  private jobLine(r: BatchJobRow): BatchOutputLine {
    const customId = r.customId ?? r.id;
    const base = { id: `batch_req_${r.id}`, custom_id: customId };
    if (r.state === "succeeded" && r.result) {
      return {
        ...base,
        response: {
          status_code: 200,
          request_id: r.id,
          body: toChatCompletion(r, r.result, r.params.maxTokens ?? this.defaultMaxTokens),
        },
        error: null,
      };
    }
    const { status, body } = jobErrorBody({ id: r.id, state: r.state, error: r.error ?? null });
    return {
      ...base,
      response: { status_code: status, request_id: r.id, body },
      error: { code: body.error.code, message: body.error.message },
    };
  }
}

function rejectedLine(r: NonNullable<OpenAIBatchRow["rejected"]>[number]): BatchOutputLine {
  return {
    id: `batch_req_line_${r.line}`,
    custom_id: r.customId,
    response: {
      status_code: 400,
      request_id: `line_${r.line}`,
      body: { error: { code: r.code, message: r.message, type: "invalid_request_error", param: null } },
    },
    error: { code: r.code, message: r.message },
  };
}

const lines = (ls: BatchOutputLine[]) => `${ls.map((l) => JSON.stringify(l)).join("\n")}\n`;
