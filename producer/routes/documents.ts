import type { Context } from "hono";
import type { Logger } from "../../runtime/log.ts";
import type { BatchOptions } from "../../schema/batch.ts";
import {
  CreateDocumentJobsRequest,
  CreateDocumentRequest,
  type DocumentDeleted,
  type DocumentList,
  ListDocumentsQuery,
} from "../../schema/document.ts";
import type { DocumentRow } from "../../schema/tables.ts";
import { ownDocument, ownerFilter, principalOf, scopedIdempotencyKey } from "../auth/principal.ts";
import type { BatchIntake } from "../batch-intake.ts";
import { jobsFromArray } from "../batch-items.ts";
import { type DocumentStore, documentInput } from "../documents.ts";
import { ApiError } from "../errors.ts";
import type { ExtractionPool } from "../extraction/pool.ts";
import { checkSameRequest, RequestFingerprint } from "../idempotency.ts";
import { newId } from "../ids.ts";
import { textSha256 } from "../job-message.ts";
import { pathParam, type Route } from "../route.ts";
import { type BatchStore, toBatchView } from "../stores/batches.ts";
import { type DocumentRecords, toDocumentView } from "../stores/documents.ts";
import { parseJson, parseValue, readForm } from "../validate.ts";
import type { AddressPolicy } from "../webhooks/address.ts";
import { checkWebhookUrl } from "./webhooks.ts";

export interface DocumentRoutesDeps {
  documentRecords: DocumentRecords;
  documents: DocumentStore;
  batches: BatchStore;
  intake: BatchIntake;
  /** Text of an uploaded file: PDF and DOCX on extraction threads, under their limits. */
  extraction: ExtractionPool;
  maxDocument: number;
  maxBatchItems: number;
  webhookPolicy: AddressPolicy;
  log: Logger;
}

interface Upload {
  text: string;
  title?: string;
  filename?: string;
  mime?: string;
  /** Where an error about the text points: `text` (JSON) or `file` (multipart). */
  field: string;
}

/** The document in a POST /v1/documents body: JSON text, or a multipart `file` whose text is extracted. */
async function readUpload(c: Context, extraction: ExtractionPool): Promise<Upload> {
  const type = (c.req.header("content-type") ?? "").split(";")[0]?.trim().toLowerCase();
  if (type !== "multipart/form-data") {
    const { text, title } = await parseJson(c, CreateDocumentRequest);
    return { text, title, field: "text" };
  }
  const form = await readForm(c);
  const file = form.file;
  if (!(file instanceof File)) throw new ApiError("validation_failed", "file: a file part is required", "file");
  const { title = file.name || undefined } = parseValue(CreateDocumentRequest.pick({ title: true }), {
    title: typeof form.title === "string" && form.title !== "" ? form.title : undefined,
  });
  let text: string;
  try {
    ({ text } = await extraction.extract({ name: file.name, type: file.type, bytes: new Uint8Array(await file.arrayBuffer()) }));
  } catch (err) {
    if (err instanceof ApiError) throw new ApiError(err.code, err.message, "file", err.headers);
    throw err;
  }
  return { text, title, filename: file.name || undefined, mime: file.type || undefined, field: "file" };
}

/**
 * POST /v1/documents: the text goes to the docket-docs object store under the new document's id, then the row
 * is written. A repeated Idempotency-Key returns the first document (422 when the upload differs) and removes
 * what the repeat stored.
 */
async function createDocument(
  c: Context,
  { documentRecords, documents, extraction, log }: DocumentRoutesDeps,
): Promise<Response> {
  const principal = principalOf(c);
  const key = scopedIdempotencyKey(principal, c.req.header("idempotency-key"));
  const upload = await readUpload(c, extraction);
  const bytes = documents.check(upload.text, upload.field);
  const sha256 = textSha256(upload.text);
  const { title, filename, mime } = upload;
  const fingerprint = key ? new RequestFingerprint().add({ sha256, title, filename, mime }).digest() : undefined;
  const known = key ? documentRecords.byIdempotencyKey(key) : undefined;
  if (known) {
    checkSameRequest(known, fingerprint);
    return c.json(toDocumentView(known), 200);
  }
  const id = newId("doc");
  const row: DocumentRow = {
    id,
    owner: principal.keyId,
    title: title ?? null,
    filename: filename ?? null,
    mime: mime ?? null,
    bytes,
    sha256,
    object: id,
    idempotencyKey: key ?? null,
    idempotencyFingerprint: fingerprint ?? null,
    createdAt: new Date().toISOString(),
  };
  try {
    await documents.put(row.object, upload.text);
  } catch (err) {
    throw new ApiError("unavailable", `could not store the document: ${(err as Error).message}; retry later`);
  }
  if (!documentRecords.insert(row)) {
    await documents.remove(row.object);
    const existing = key ? documentRecords.byIdempotencyKey(key) : undefined;
    if (!existing) throw new Error(`document ${id} could not be created`);
    checkSameRequest(existing, fingerprint);
    return c.json(toDocumentView(existing), 200);
  }
  log.info({ documentId: id, bytes }, "document uploaded");
  return c.json(toDocumentView(row), 201);
}

/** POST /v1/documents/:id/jobs: one job per task on the document, submitted as one batch (BatchIntake). */
async function submitDocumentJobs(c: Context, deps: DocumentRoutesDeps): Promise<Response> {
  const { documentRecords, batches, intake, maxDocument, maxBatchItems, webhookPolicy } = deps;
  const principal = principalOf(c);
  const documentId = pathParam(c, "id");
  const req = await parseJson(c, CreateDocumentJobsRequest);
  const key = scopedIdempotencyKey(principal, c.req.header("idempotency-key"));
  const idempotency = key ? { key, fingerprint: new RequestFingerprint().add({ documentId, ...req }).digest() } : undefined;
  const known = key ? batches.byIdempotencyKey(key) : undefined;
  if (known) {
    checkSameRequest(known, idempotency?.fingerprint);
    return c.json(toBatchView(known), 200);
  }
  const doc = ownDocument(documentRecords, principal, documentId);
  if (req.webhookUrl) await checkWebhookUrl(webhookPolicy, req.webhookUrl);
  const id = newId("batch");
  const createdAt = new Date().toISOString();
  // A batch row records one task: the first; each job keeps its own.
  const options: BatchOptions = {
    task: req.tasks[0]!.task,
    lane: req.lane,
    ...(req.model ? { model: req.model } : {}),
    params: req.params,
    webhookUrl: req.webhookUrl,
  };
  const ctx = { options, batchId: id, submittedAt: createdAt, maxDocument, document: documentInput(doc) };
  const jobs = await jobsFromArray(ctx, req.tasks, maxBatchItems, "tasks");
  const { row, created } = await intake.submit(id, options, jobs, createdAt, idempotency, principal.keyId);
  if (!created) checkSameRequest(row, idempotency?.fingerprint);
  return c.json(toBatchView(row), created ? 202 : 200);
}

/** /v1/documents: upload once (text, txt, md, pdf, docx), list, get, delete, and many tasks on one as a batch. */
export const documentRoutes: Route<DocumentRoutesDeps>[] = [
  {
    method: "post",
    path: "/v1/documents",
    access: "key",
    bodySize: "batch",
    tag: "documents",
    summary: "Upload a document once, for many jobs to name",
    description:
      "JSON `{text, title?}`, or multipart with a `file` (txt, md, pdf, docx; text extracted as for batches) and an optional `title` (default: the file name). The text is kept in the docket-docs object store until the document is deleted; jobs name it with `input.documentId`, batches with `documentId`. At most DOCKET_MAX_DOCUMENT_BYTES of text.",
    body: { "application/json": "CreateDocumentRequest", "multipart/form-data": "DocumentUploadForm" },
    headers: [
      {
        name: "Idempotency-Key",
        description:
          "The same key and upload return the same document (200) instead of a new one; the same key with another upload is 422.",
      },
    ],
    responses: {
      "201": "DocumentView",
      "200": { description: "The document an earlier request with this Idempotency-Key created.", schema: "DocumentView" },
      "400": "Error",
      "413": "Error",
      "422": "Error",
      "503": "Error",
    },
    handler: createDocument,
  },
  {
    method: "get",
    path: "/v1/documents",
    access: "key",
    tag: "documents",
    summary: "List documents, newest first, with cursor pagination",
    query: [
      { name: "cursor", description: "`nextCursor` of the previous page" },
      { name: "limit", description: "1 to 1000, default 100" },
    ],
    responses: { "200": "DocumentList", "400": "Error" },
    handler: (c, { documentRecords }) => {
      const q = parseValue(ListDocumentsQuery, c.req.query());
      const { rows, nextCursor } = documentRecords.list(q, ownerFilter(principalOf(c)));
      return c.json({
        data: rows.map((r) => toDocumentView(r)),
        nextCursor,
        hasMore: nextCursor !== null,
      } satisfies DocumentList);
    },
  },
  {
    method: "get",
    path: "/v1/documents/{id}",
    access: "key",
    tag: "documents",
    summary: "Get a document's metadata (with ?include=text, its text too)",
    query: [{ name: "include", description: "`text`: add the document's text" }],
    responses: { "200": "DocumentView", "404": "Error", "503": "Error" },
    handler: async (c, { documentRecords, documents }) => {
      const row = ownDocument(documentRecords, principalOf(c), pathParam(c, "id"));
      if (c.req.query("include") !== "text") return c.json(toDocumentView(row));
      const text = await documents.read(row.object).catch((err: Error) => {
        throw new ApiError("unavailable", `could not read the document's text: ${err.message}; retry later`);
      });
      if (text === undefined) throw new ApiError("unavailable", `the text of document ${row.id} is not in the object store`);
      return c.json(toDocumentView(row, text));
    },
  },
  {
    method: "delete",
    path: "/v1/documents/{id}",
    access: "key",
    tag: "documents",
    summary: "Delete a document: its row and its text",
    description:
      "Jobs already queued on it fail with `document_unavailable` when a worker finds its text gone; jobs that ended keep their results.",
    responses: { "200": "DocumentDeleted", "404": "Error", "503": "Error" },
    handler: async (c, { documentRecords, documents, log }) => {
      const row = ownDocument(documentRecords, principalOf(c), pathParam(c, "id"));
      // The object first: if the store fails the row stays, and the delete can be retried.
      await documents.deleteObject(row.object).catch((err: Error) => {
        throw new ApiError("unavailable", `could not delete the document's text: ${err.message}; retry later`);
      });
      documentRecords.delete(row.id);
      log.info({ documentId: row.id }, "document deleted");
      return c.json({ id: row.id, object: "document", deleted: true } satisfies DocumentDeleted);
    },
  },
  {
    method: "post",
    path: "/v1/documents/{id}/jobs",
    access: "key",
    tag: "documents",
    summary: "Run many tasks on one document, as one batch",
    description:
      "One job per entry of `tasks` (task, params merged over the request's `params`, customId), all reading the document; the answer is a batch like POST /v1/batches makes (get, results, cancel, webhooks). The batch records the first task as its `task`.",
    body: "CreateDocumentJobsRequest",
    headers: [
      {
        name: "Idempotency-Key",
        description:
          "The same key and body return the same batch (200) instead of a new one; the same key with another body is 422.",
      },
    ],
    responses: {
      "202": "BatchView",
      "200": { description: "The batch an earlier request with this Idempotency-Key created.", schema: "BatchView" },
      "400": "Error",
      "404": "Error",
      "422": "Error",
      "429": "Error",
    },
    handler: submitDocumentJobs,
  },
];
