import { type Context, Hono } from "hono";
import { stream } from "hono/streaming";
import type { Logger } from "../../runtime/log.ts";
import { CreateOpenAIBatchRequest, ListQuery } from "../../schema/openai-batch.ts";
import { checkOwner, ownerFilter, principalOf } from "../auth/principal.ts";
import type { BatchIntake } from "../batch-intake.ts";
import type { Canceller } from "../cancel.ts";
import type { Db } from "../db.ts";
import { ApiError } from "../errors.ts";
import { BatchOutput } from "../openai-batch-output.ts";
import { OpenAIBatches } from "../openai-batches.ts";
import type { BatchStore } from "../stores/batches.ts";
import { FileStore, newFileId, toFileObject } from "../stores/files.ts";
import { OpenAIBatchStore } from "../stores/openai-batches.ts";
import { parseJson, parseValue } from "../validate.ts";

export interface OpenAIBatchRoutesDeps {
  db: Db;
  batches: BatchStore;
  intake: BatchIntake;
  canceller: Canceller;
  log: Logger;
  defaultMaxTokens: number;
  maxBatchItems: number;
  maxDocument: number;
  /** Largest uploaded file (DOCKET_MAX_BATCH_BODY_BYTES). */
  maxBatchBody: number;
}

/** OpenAI Files and Batch API under /openai/v1: the official openai client's files.* and batches.* work against it. */
export function openaiBatchRoutes(deps: OpenAIBatchRoutesDeps) {
  const files = new FileStore(deps.db);
  const output = new BatchOutput(deps.batches, deps.defaultMaxTokens);
  const batches = new OpenAIBatches({ ...deps, files, output, openaiBatches: new OpenAIBatchStore(deps.db) });
  const app = new Hono();
  const fileOr404 = (c: Context, id: string) => {
    const row = files.get(id);
    if (!row) throw new ApiError("not_found", `no file with id ${id}`);
    checkOwner(principalOf(c), row, `file ${id}`);
    return row;
  };

  app.post("/files", async (c) => {
    const type = (c.req.header("content-type") ?? "").split(";")[0]?.trim().toLowerCase();
    if (type !== "multipart/form-data")
      throw new ApiError("validation_failed", "upload the file as multipart/form-data with fields file and purpose");
    const form = await c.req.parseBody();
    const file = form.file;
    if (!(file instanceof File)) throw new ApiError("validation_failed", "file: a file part is required", "file");
    if (form.purpose !== "batch")
      throw new ApiError("validation_failed", `purpose: docket accepts "batch" files only`, "purpose");
    if (file.size > deps.maxBatchBody)
      throw new ApiError(
        "payload_too_large",
        `the file is ${file.size} bytes; the largest is ${deps.maxBatchBody} (DOCKET_MAX_BATCH_BODY_BYTES)`,
      );
    const content = Buffer.from(await file.arrayBuffer());
    const row = files.insert({
      id: newFileId(),
      filename: file.name || "upload.jsonl",
      purpose: "batch",
      bytes: content.byteLength,
      batchId: null,
      batchPart: null,
      owner: principalOf(c).keyId,
      createdAt: new Date().toISOString(),
      content,
    });
    deps.log.info({ fileId: row.id, bytes: row.bytes }, "file uploaded");
    return c.json(toFileObject(row));
  });

  app.get("/files", (c) => {
    const q = parseValue(ListQuery, c.req.query());
    const { rows, hasMore } = files.list(q, ownerFilter(principalOf(c)));
    const data = rows.map(toFileObject);
    return c.json({ object: "list", data, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null, has_more: hasMore });
  });

  app.get("/files/:id", (c) => c.json(toFileObject(fileOr404(c, c.req.param("id")))));

  app.get("/files/:id/content", (c) => {
    const row = fileOr404(c, c.req.param("id"));
    c.header("content-disposition", `attachment; filename="${row.filename.replace(/["\\\r\n]/g, "_")}"`);
    if (!row.batchId) {
      c.header("content-type", "application/octet-stream");
      const bytes = files.content(row.id) ?? Buffer.alloc(0);
      return c.body(new Uint8Array(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.byteLength));
    }
    const chunks = batches.content(row);
    c.header("content-type", "application/x-ndjson");
    return stream(c, async (s) => {
      for await (const chunk of chunks) {
        if (s.aborted) break;
        await s.write(chunk);
      }
    });
  });

  app.delete("/files/:id", (c) => {
    const id = fileOr404(c, c.req.param("id")).id;
    if (!files.delete(id)) throw new ApiError("not_found", `no file with id ${id}`);
    return c.json({ id, object: "file", deleted: true });
  });

  app.post("/batches", async (c) => c.json(await batches.create(await parseJson(c, CreateOpenAIBatchRequest), principalOf(c))));
  app.get("/batches", async (c) => c.json(await batches.list(parseValue(ListQuery, c.req.query()), ownerFilter(principalOf(c)))));
  app.get("/batches/:id", async (c) => c.json(await batches.get(c.req.param("id"), principalOf(c))));
  app.post("/batches/:id/cancel", async (c) => c.json(await batches.cancel(c.req.param("id"), principalOf(c))));

  return app;
}
