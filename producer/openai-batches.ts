import type { Logger } from "../runtime/log.ts";
import { TERMINAL_BATCH_STATES } from "../schema/batch.ts";
import { BATCH_ENDPOINT, type CreateOpenAIBatchRequest, type OpenAIBatch } from "../schema/openai-batch.ts";
import type { BatchRow, OpenAIBatchRow } from "../schema/tables.ts";
import { checkOwner, type Principal } from "./auth/principal.ts";
import type { BatchIntake } from "./batch-intake.ts";
import type { Canceller } from "./cancel.ts";
import type { Db } from "./db.ts";
import { ApiError } from "./errors.ts";
import { newId } from "./ids.ts";
import { parseBatchInput } from "./openai-batch-input.ts";
import type { BatchOutput, BatchPart } from "./openai-batch-output.ts";
import type { BatchStore } from "./stores/batches.ts";
import type { FileMeta } from "./stores/files.ts";
import { type FileStore, newFileId } from "./stores/files.ts";
import type { OpenAIBatchStore } from "./stores/openai-batches.ts";

const secs = (iso: string | null | undefined) => (iso ? Math.floor(Date.parse(iso) / 1000) : null);

export interface OpenAIBatchesDeps {
  /** For the transaction that writes an ended batch's files with the batch's reference to them. */
  db: Db;
  batches: BatchStore;
  openaiBatches: OpenAIBatchStore;
  intake: BatchIntake;
  canceller: Canceller;
  files: FileStore;
  output: BatchOutput;
  maxBatchItems: number;
  maxDocument: number;
  /** Length of the completion window (`24h`; DOCKET_OPENAI_BATCH_WINDOW_SECONDS). */
  windowSeconds: number;
  log: Logger;
}

/**
 * OpenAI batches: each is a docket batch of chat jobs on the batch lane (same id), plus what OpenAI's
 * object adds (input file, endpoint, metadata, refused requests). Its completion window is the batch's
 * `expiresAt`: still unfinished then, the producer expires it (Deadlines). Once the batch has ended, its output
 * and error files are created on first read: file rows sized by one rendering pass, whose content is
 * rendered again from the jobs at each download.
 */
export class OpenAIBatches {
  private readonly finalizing = new Map<string, Promise<OpenAIBatchRow>>();

  constructor(private readonly deps: OpenAIBatchesDeps) {}

  async create(req: CreateOpenAIBatchRequest, caller: Principal): Promise<OpenAIBatch> {
    const owner = caller.keyId;
    const { batches, files, intake, openaiBatches } = this.deps;
    const file = files.get(req.input_file_id);
    if (!file) throw new ApiError("not_found", `no file with id ${req.input_file_id}`, "input_file_id");
    checkOwner(caller, file, `file ${file.id}`, "input_file_id");
    if (file.purpose !== "batch")
      throw new ApiError(
        "validation_failed",
        `file ${file.id} has purpose ${file.purpose}; upload the input with purpose "batch"`,
        "input_file_id",
      );
    const content = files.content(file.id) ?? Buffer.alloc(0);
    const id = newId("batch");
    const createdAt = new Date().toISOString();
    const options = { task: "chat" as const, lane: "batch" as const, params: {} };
    const input = await parseBatchInput(
      { options, batchId: id, submittedAt: createdAt, maxDocument: this.deps.maxDocument },
      content,
      this.deps.maxBatchItems,
    );
    const failed = input.errors.length > 0;
    if (failed || input.jobs.length === 0) {
      batches.create({ id, lane: options.lane, task: options.task, params: {}, total: 0, createdAt, owner });
      const first = input.errors[0];
      batches.close(id, failed ? "failed" : "completed", first ? { code: first.code, message: first.message } : undefined);
    } else {
      const expiresAt = new Date(Date.parse(createdAt) + this.deps.windowSeconds * 1000).toISOString();
      await intake.submit(id, options, input.jobs, createdAt, undefined, owner, expiresAt);
    }
    openaiBatches.insert({
      id,
      inputFileId: file.id,
      endpoint: BATCH_ENDPOINT,
      completionWindow: req.completion_window,
      metadata: req.metadata ?? null,
      model: input.model,
      rejected: failed ? null : input.rejected,
      errors: failed ? input.errors : null,
      owner,
      createdAt,
    });
    this.deps.log.info(
      {
        batchId: id,
        fileId: file.id,
        jobs: failed ? 0 : input.jobs.length,
        rejected: input.rejected.length,
        errors: input.errors.length,
      },
      "openai batch created",
    );
    return this.get(id, caller);
  }

  async get(id: string, caller: Principal): Promise<OpenAIBatch> {
    const found = this.rows(id, caller);
    if (!found) throw new ApiError("not_found", `no batch with id ${id}`);
    return toOpenAIBatch(found.batch, await this.finalize(found.batch, found.ob));
  }

  /** `owner` undefined lists every batch (the admin). */
  async list(q: { limit: number; after?: string }, owner: string | undefined) {
    const { rows: obs, hasMore } = this.deps.openaiBatches.list(q, owner);
    const data: OpenAIBatch[] = [];
    for (const ob of obs) {
      const batch = this.deps.batches.get(ob.id);
      if (batch) data.push(toOpenAIBatch(batch, await this.finalize(batch, ob)));
    }
    return { object: "list" as const, data, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null, has_more: hasMore };
  }

  async cancel(id: string, caller: Principal): Promise<OpenAIBatch> {
    if (!this.rows(id, caller)) throw new ApiError("not_found", `no batch with id ${id}`);
    await this.deps.canceller.cancelBatch(id);
    return this.get(id, caller);
  }

  /**
   * A retry reopened the batch: the output and error files of its last end go (their sizes were measured then),
   * and new ones are made when it ends again. Call it in the retry's transaction.
   */
  discardFiles(id: string): void {
    const ob = this.deps.openaiBatches.get(id);
    if (!ob?.filesAt) return;
    for (const file of [ob.outputFileId, ob.errorFileId]) if (file) this.deps.files.delete(file);
    this.deps.openaiBatches.setFiles(id, { outputFileId: null, errorFileId: null, filesAt: null });
  }

  /** The lines of a batch's output or error file, rendered from its jobs. */
  content(file: FileMeta): AsyncGenerator<string> {
    const ob = file.batchId ? this.deps.openaiBatches.get(file.batchId) : undefined;
    if (!ob || !file.batchPart) throw new ApiError("not_found", `file ${file.id} has no content`);
    return this.deps.output.chunks(ob, file.batchPart);
  }

  private rows(id: string, caller: Principal): { batch: BatchRow; ob: OpenAIBatchRow } | undefined {
    const ob = this.deps.openaiBatches.get(id);
    if (ob) checkOwner(caller, ob, `batch ${id}`);
    const batch = ob && this.deps.batches.get(id);
    return ob && batch ? { batch, ob } : undefined;
  }

  /** Creates the output and error files of an ended batch, once (concurrent readers share the one pass). */
  private finalize(batch: BatchRow, ob: OpenAIBatchRow): Promise<OpenAIBatchRow> | OpenAIBatchRow {
    if (ob.filesAt || !TERMINAL_BATCH_STATES.includes(batch.state)) return ob;
    let pending = this.finalizing.get(ob.id);
    if (!pending) {
      pending = this.writeFiles(ob).finally(() => this.finalizing.delete(ob.id));
      this.finalizing.set(ob.id, pending);
    }
    return pending;
  }

  private async writeFiles(ob: OpenAIBatchRow): Promise<OpenAIBatchRow> {
    const { files, output, db, openaiBatches } = this.deps;
    const at = new Date().toISOString();
    const ids: Record<BatchPart, string | null> = { output: null, error: null };
    const sized: [BatchPart, { bytes: number; lines: number }][] = [];
    for (const part of ["output", "error"] as const) sized.push([part, await output.measure(ob, part)]);
    db.transaction(() => {
      for (const [part, { bytes, lines }] of sized) {
        if (lines === 0) continue;
        const id = newFileId();
        files.insert({
          id,
          filename: `${ob.id}_${part}.jsonl`,
          purpose: "batch_output",
          bytes,
          batchId: ob.id,
          batchPart: part,
          owner: ob.owner,
          createdAt: at,
          content: null,
        });
        ids[part] = id;
      }
      openaiBatches.setFiles(ob.id, { outputFileId: ids.output, errorFileId: ids.error, filesAt: at });
    });
    this.deps.log.info({ batchId: ob.id, outputFileId: ids.output, errorFileId: ids.error }, "openai batch files ready");
    return { ...ob, outputFileId: ids.output, errorFileId: ids.error, filesAt: at };
  }
}

export function toOpenAIBatch(batch: BatchRow, ob: OpenAIBatchRow): OpenAIBatch {
  const rejected = ob.rejected?.length ?? 0;
  const created = secs(ob.createdAt) ?? 0;
  const ended = secs(batch.finishedAt);
  return {
    id: batch.id,
    object: "batch",
    endpoint: ob.endpoint,
    model: ob.model,
    errors: ob.errors?.length
      ? {
          object: "list",
          data: ob.errors.map((e) => ({ code: e.code, message: e.message, line: e.line ?? null, param: e.param ?? null })),
        }
      : null,
    input_file_id: ob.inputFileId,
    completion_window: ob.completionWindow,
    status: batch.state,
    output_file_id: ob.outputFileId,
    error_file_id: ob.errorFileId,
    created_at: created,
    in_progress_at: secs(batch.inProgressAt),
    expires_at: secs(batch.expiresAt) ?? created,
    finalizing_at: batch.state === "completed" ? ended : null,
    completed_at: batch.state === "completed" ? ended : null,
    failed_at: batch.state === "failed" ? ended : null,
    expired_at: batch.state === "expired" ? ended : null,
    cancelling_at: secs(batch.cancelRequestedAt),
    cancelled_at: batch.state === "cancelled" ? ended : null,
    request_counts: {
      total: batch.total + rejected,
      completed: batch.succeeded,
      failed: batch.failed + batch.cancelled + rejected,
    },
    metadata: ob.metadata ?? null,
  };
}
