import type { Context } from "hono";
import { stream } from "hono/streaming";
import type { Logger } from "../../runtime/log.ts";
import { CreateOpenAIBatchRequest, ListQuery } from "../../schema/openai-batch.ts";
import { checkOwner, ownerFilter, principalOf } from "../auth/principal.ts";
import { ApiError } from "../errors.ts";
import type { OpenAIBatches } from "../openai-batches.ts";
import { pathParam, type Route } from "../route.ts";
import { type FileStore, newFileId, toFileObject } from "../stores/files.ts";
import { parseJson, parseValue, readForm } from "../validate.ts";

export interface OpenAIBatchRoutesDeps {
  files: FileStore;
  openaiBatches: OpenAIBatches;
  log: Logger;
  /** Largest uploaded file (DOCKET_MAX_BATCH_BODY_BYTES). */
  maxBatchBody: number;
}

function ownFile(c: Context, files: FileStore) {
  const id = pathParam(c, "id");
  const row = files.get(id);
  if (!row) throw new ApiError("not_found", `no file with id ${id}`);
  checkOwner(principalOf(c), row, `file ${id}`);
  return row;
}

/** OpenAI Files and Batch API under /openai/v1: the official openai client's files.* and batches.* work against it. */
export const openaiBatchRoutes: Route<OpenAIBatchRoutesDeps>[] = [
  {
    method: "post",
    path: "/openai/v1/files",
    access: "key",
    bodySize: "batch",
    tag: "openai",
    summary: "Upload a batch input file (OpenAI Files API, purpose batch)",
    description:
      "Multipart with `file` and `purpose=batch`; at most DOCKET_MAX_BATCH_BODY_BYTES bytes. The bytes are kept in the database.",
    body: { "multipart/form-data": "FileUploadForm" },
    responses: { "200": "FileObject", "400": "Error", "413": "Error" },
    handler: async (c, { files, log, maxBatchBody }) => {
      const type = (c.req.header("content-type") ?? "").split(";")[0]?.trim().toLowerCase();
      if (type !== "multipart/form-data")
        throw new ApiError("validation_failed", "upload the file as multipart/form-data with fields file and purpose");
      const form = await readForm(c);
      const file = form.file;
      if (!(file instanceof File)) throw new ApiError("validation_failed", "file: a file part is required", "file");
      if (form.purpose !== "batch")
        throw new ApiError("validation_failed", `purpose: docket accepts "batch" files only`, "purpose");
      if (file.size > maxBatchBody)
        throw new ApiError(
          "payload_too_large",
          `the file is ${file.size} bytes; the largest is ${maxBatchBody} (DOCKET_MAX_BATCH_BODY_BYTES)`,
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
      log.info({ fileId: row.id, bytes: row.bytes }, "file uploaded");
      return c.json(toFileObject(row));
    },
  },
  {
    method: "get",
    path: "/openai/v1/files",
    access: "key",
    tag: "openai",
    summary: "List files, newest first",
    query: [
      { name: "purpose", description: "batch or batch_output" },
      { name: "limit", description: "1 to 100, default 20" },
      { name: "after", description: "last id of the previous page" },
    ],
    responses: { "200": "FileList" },
    handler: (c, { files }) => {
      const q = parseValue(ListQuery, c.req.query());
      const { rows, hasMore } = files.list(q, ownerFilter(principalOf(c)));
      const data = rows.map(toFileObject);
      return c.json({ object: "list", data, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null, has_more: hasMore });
    },
  },
  {
    method: "get",
    path: "/openai/v1/files/{id}",
    access: "key",
    tag: "openai",
    summary: "Get a file object",
    responses: { "200": "FileObject", "404": "Error" },
    handler: (c, { files }) => c.json(toFileObject(ownFile(c, files))),
  },
  {
    method: "get",
    path: "/openai/v1/files/{id}/content",
    access: "key",
    tag: "openai",
    summary: "Download a file: an upload's bytes, or a batch's output or error JSONL (BatchOutputLine per line)",
    responses: {
      "200": { description: "The file", contentType: "application/octet-stream" },
      "404": "Error",
    },
    handler: (c, { files, openaiBatches }) => {
      const row = ownFile(c, files);
      c.header("content-disposition", `attachment; filename="${row.filename.replace(/["\\\r\n]/g, "_")}"`);
      if (!row.batchId) {
        c.header("content-type", "application/octet-stream");
        const bytes = files.content(row.id) ?? Buffer.alloc(0);
        return c.body(new Uint8Array(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.byteLength));
      }
      const chunks = openaiBatches.content(row);
      c.header("content-type", "application/x-ndjson");
      return stream(c, async (s) => {
        for await (const chunk of chunks) {
          if (s.aborted) break;
          await s.write(chunk);
        }
      });
    },
  },
  {
    method: "delete",
    path: "/openai/v1/files/{id}",
    access: "key",
    tag: "openai",
    summary: "Delete a file",
    responses: { "200": "FileDeleted", "404": "Error" },
    handler: (c, { files }) => {
      const id = ownFile(c, files).id;
      if (!files.delete(id)) throw new ApiError("not_found", `no file with id ${id}`);
      return c.json({ id, object: "file", deleted: true });
    },
  },
  {
    method: "post",
    path: "/openai/v1/batches",
    access: "key",
    tag: "openai",
    summary: "Create an OpenAI batch from an uploaded JSONL of chat completion requests",
    description:
      "Each BatchRequestLine becomes a chat job on the batch lane (customId = custom_id). A malformed line (not JSON, wrong method or url, duplicate custom_id) fails the whole batch with `errors`; a well-formed line whose body is not a valid chat completion request goes to the error file with status_code 400.",
    body: "CreateOpenAIBatchRequest",
    responses: { "200": "OpenAIBatch", "400": "Error", "404": "Error", "429": "Error" },
    handler: async (c, { openaiBatches }) =>
      c.json(await openaiBatches.create(await parseJson(c, CreateOpenAIBatchRequest), principalOf(c))),
  },
  {
    method: "get",
    path: "/openai/v1/batches",
    access: "key",
    tag: "openai",
    summary: "List OpenAI batches, newest first",
    query: [
      { name: "limit", description: "1 to 100, default 20" },
      { name: "after", description: "last id of the previous page" },
    ],
    responses: { "200": "OpenAIBatchList" },
    handler: async (c, { openaiBatches }) =>
      c.json(await openaiBatches.list(parseValue(ListQuery, c.req.query()), ownerFilter(principalOf(c)))),
  },
  {
    method: "get",
    path: "/openai/v1/batches/{id}",
    access: "key",
    tag: "openai",
    summary: "Get an OpenAI batch; once it has ended, output_file_id and error_file_id name its result files",
    responses: { "200": "OpenAIBatch", "404": "Error" },
    handler: async (c, { openaiBatches }) => c.json(await openaiBatches.get(pathParam(c, "id"), principalOf(c))),
  },
  {
    method: "post",
    path: "/openai/v1/batches/{id}/cancel",
    access: "key",
    tag: "openai",
    summary: "Cancel an OpenAI batch",
    responses: { "200": "OpenAIBatch", "404": "Error", "409": "Error" },
    handler: async (c, { openaiBatches }) => c.json(await openaiBatches.cancel(pathParam(c, "id"), principalOf(c))),
  },
];
