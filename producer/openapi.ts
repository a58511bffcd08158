import { z } from "zod";
import { CreatedKey, CreateJobRequest, CreateKeyRequest, ErrorResponse, JobView, KeyList, KeyView } from "../schema/api.ts";
import { BatchItem, BatchResultLine, BatchView, CreateBatchRequest, RejectedItem } from "../schema/batch.ts";
import { ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, ModelList } from "../schema/openai.ts";
import {
  BatchOutputLine,
  BatchRequestLine,
  CreateOpenAIBatchRequest,
  FileDeleted,
  FileList,
  FileObject,
  OpenAIBatch,
  OpenAIBatchList,
} from "../schema/openai-batch.ts";
import { WEBHOOK_EVENT_TYPES, WebhookDeliveryList, WebhookPayload } from "../schema/webhook.ts";
import { accessOf } from "./auth/authenticate.ts";

/** Bodies that only the document describes (the routes read them as multipart forms or build them inline). */
const BatchCreated = BatchView.extend({
  rejected: z.object({ count: z.number(), items: z.array(RejectedItem) }).optional(),
});
const BatchUploadForm = z.object({
  files: z.array(z.file()).min(1).meta({ description: "txt, md, pdf or docx files; each file name becomes its customId" }),
  task: z.string(),
  lane: z.string().optional(),
  params: z.string().optional().meta({ description: "JSON object" }),
  webhookUrl: z.string().optional(),
});
const FileUploadForm = z.object({
  file: z.file().meta({ description: "JSONL of batch request lines (BatchRequestLine)" }),
  purpose: z.literal("batch"),
});
const JobList = z.object({ data: z.array(JobView), nextCursor: z.string().nullable(), hasMore: z.boolean() });

/**
 * Schemas published under components.schemas, from the same zod schemas that validate requests.
 * Requests are described as the client writes them (io "input": defaults make fields optional).
 */
export const COMPONENTS: Record<string, { schema: z.ZodType; io: "input" | "output" }> = {
  CreateJobRequest: { schema: CreateJobRequest, io: "input" },
  JobView: { schema: JobView, io: "output" },
  Error: { schema: ErrorResponse, io: "output" },
  WebhookDeliveryList: { schema: WebhookDeliveryList, io: "output" },
  WebhookPayload: { schema: WebhookPayload, io: "output" },
  ChatCompletionRequest: { schema: ChatCompletionRequest, io: "input" },
  ChatCompletion: { schema: ChatCompletion, io: "output" },
  ChatCompletionChunk: { schema: ChatCompletionChunk, io: "output" },
  ModelList: { schema: ModelList, io: "output" },
  CreateKeyRequest: { schema: CreateKeyRequest, io: "input" },
  CreatedKey: { schema: CreatedKey, io: "output" },
  KeyView: { schema: KeyView, io: "output" },
  KeyList: { schema: KeyList, io: "output" },
  CreateBatchRequest: { schema: CreateBatchRequest, io: "input" },
  BatchItem: { schema: BatchItem, io: "input" },
  BatchUploadForm: { schema: BatchUploadForm, io: "input" },
  BatchView: { schema: BatchView, io: "output" },
  BatchCreated: { schema: BatchCreated, io: "output" },
  BatchResultLine: { schema: BatchResultLine, io: "output" },
  JobList: { schema: JobList, io: "output" },
  FileUploadForm: { schema: FileUploadForm, io: "input" },
  FileObject: { schema: FileObject, io: "output" },
  FileList: { schema: FileList, io: "output" },
  FileDeleted: { schema: FileDeleted, io: "output" },
  BatchRequestLine: { schema: BatchRequestLine, io: "input" },
  CreateOpenAIBatchRequest: { schema: CreateOpenAIBatchRequest, io: "input" },
  OpenAIBatch: { schema: OpenAIBatch, io: "output" },
  OpenAIBatchList: { schema: OpenAIBatchList, io: "output" },
  BatchOutputLine: { schema: BatchOutputLine, io: "output" },
};
type ComponentName = keyof typeof COMPONENTS;

export interface Operation {
  method: "get" | "post" | "delete";
  /** OpenAPI path, parameters in braces: /v1/jobs/{id}. */
  path: string;
  summary: string;
  description?: string;
  tag: string;
  /** A JSON body, or content type → component for other or several types. */
  body?: ComponentName | Record<string, ComponentName>;
  headers?: { name: string; description: string }[];
  query?: { name: string; description: string }[];
  /** status → component (JSON body), `text/event-stream: <description>`, or a description alone. */
  responses: Record<string, ComponentName | { description: string; contentType?: string; schema?: ComponentName }>;
}

/** The routes docket serves. A route added to producer/routes/ is added here too. */
export const OPERATIONS: Operation[] = [
  {
    method: "post",
    path: "/v1/jobs",
    tag: "jobs",
    summary: "Submit a job",
    description:
      "Validates, stores (queued) and publishes the job. `webhookUrl` gets a signed Standard Webhooks callback when the job ends; a URL resolving to a private address is refused with `webhook_url_forbidden` unless DOCKET_WEBHOOK_ALLOW permits it.",
    body: "CreateJobRequest",
    headers: [{ name: "Idempotency-Key", description: "The same key returns the same job (200) instead of a new one." }],
    responses: {
      "202": "JobView",
      "200": { description: "The job an earlier request with this Idempotency-Key created.", schema: "JobView" },
      "400": "Error",
      "413": "Error",
      "429": "Error",
    },
  },
  {
    method: "get",
    path: "/v1/jobs/{id}",
    tag: "jobs",
    summary: "Get a job: state, result or error, timings",
    responses: { "200": "JobView", "404": "Error" },
  },
  {
    method: "get",
    path: "/v1/jobs/{id}/webhooks",
    tag: "webhooks",
    summary: "List a job's webhook deliveries: status, attempts, next attempt, last error",
    responses: { "200": "WebhookDeliveryList", "404": "Error" },
  },
  {
    method: "post",
    path: "/openai/v1/chat/completions",
    tag: "openai",
    summary: "OpenAI-compatible chat completion (a chat job on the interactive lane)",
    description:
      "Answers when the job finishes. With `stream: true` the answer is `text/event-stream` of `chat.completion.chunk` events ending with `data: [DONE]`.",
    body: "ChatCompletionRequest",
    responses: {
      "200": { description: "The completion, or its chunks when streaming.", schema: "ChatCompletion" },
      "400": "Error",
      "429": "Error",
      "504": "Error",
    },
  },
  {
    method: "get",
    path: "/openai/v1/models",
    tag: "openai",
    summary: "Models the workers reported",
    responses: { "200": "ModelList" },
  },
  {
    method: "post",
    path: "/v1/keys",
    tag: "keys",
    summary: "Create an API key (admin key only); the secret is in this answer and nowhere else",
    body: "CreateKeyRequest",
    responses: { "201": "CreatedKey", "400": "Error", "401": "Error", "403": "Error" },
  },
  {
    method: "get",
    path: "/v1/keys",
    tag: "keys",
    summary: "List API keys without their secrets (admin key only)",
    responses: { "200": "KeyList", "401": "Error", "403": "Error" },
  },
  {
    method: "delete",
    path: "/v1/keys/{id}",
    tag: "keys",
    summary: "Revoke an API key (admin key only); its jobs and batches stay",
    responses: { "200": "KeyView", "401": "Error", "403": "Error", "404": "Error" },
  },
  {
    method: "get",
    path: "/v1/jobs",
    tag: "jobs",
    summary: "List jobs, newest first, with filters and cursor pagination",
    query: [
      { name: "state", description: "queued, running, succeeded, failed or cancelled" },
      { name: "batchId", description: "jobs of one batch" },
      { name: "task", description: "summarize, extract, classify, ask or chat" },
      { name: "createdAfter", description: "ISO time" },
      { name: "createdBefore", description: "ISO time" },
      { name: "cursor", description: "`nextCursor` of the previous page" },
      { name: "limit", description: "1 to 1000, default 100" },
    ],
    responses: { "200": "JobList", "400": "Error" },
  },
  {
    method: "post",
    path: "/v1/jobs/{id}/cancel",
    tag: "jobs",
    summary: "Cancel a queued or running job",
    responses: { "202": "JobView", "404": "Error", "409": "Error" },
  },
  {
    method: "get",
    path: "/v1/jobs/{id}/events",
    tag: "jobs",
    summary: "Live job events (Server-Sent Events)",
    description:
      "`event: state` with the job view first and on every change, `event: progress` with token counts; the stream ends after a terminal state.",
    responses: { "200": { description: "text/event-stream", contentType: "text/event-stream" }, "404": "Error" },
  },
  {
    method: "post",
    path: "/v1/batches",
    tag: "batches",
    summary: "Submit a batch: JSON items, a JSONL upload or multipart files",
    description:
      "JSON: CreateBatchRequest. JSONL (`application/x-ndjson`): one BatchItem per line, batch options (task, lane, params as JSON, webhookUrl) in the query string; bad lines are reported in `rejected`, good ones accepted. Multipart: files (txt, md, pdf, docx) plus the options as form fields. At most DOCKET_MAX_BATCH_ITEMS items and DOCKET_MAX_BATCH_BODY_BYTES bytes.",
    body: {
      "application/json": "CreateBatchRequest",
      "application/x-ndjson": "BatchItem",
      "multipart/form-data": "BatchUploadForm",
    },
    headers: [{ name: "Idempotency-Key", description: "The same key returns the same batch (200) instead of a new one." }],
    query: [
      { name: "task", description: "JSONL uploads: the batch's task" },
      { name: "lane", description: "JSONL uploads: lane (default batch)" },
      { name: "params", description: "JSONL uploads: params as a JSON object" },
      { name: "webhookUrl", description: "JSONL uploads: callback for batch.completed / failed / cancelled" },
    ],
    responses: {
      "202": "BatchCreated",
      "200": { description: "The batch an earlier request with this Idempotency-Key created.", schema: "BatchView" },
      "400": "Error",
      "413": "Error",
      "429": "Error",
    },
  },
  {
    method: "get",
    path: "/v1/batches/{id}",
    tag: "batches",
    summary: "Get a batch: state, counts by job state, progress",
    responses: { "200": "BatchView", "404": "Error" },
  },
  {
    method: "get",
    path: "/v1/batches/{id}/results",
    tag: "batches",
    summary: "Download a batch's results as JSONL, one BatchResultLine per item in submission order",
    responses: {
      "200": { description: "JSONL of BatchResultLine", contentType: "application/x-ndjson", schema: "BatchResultLine" },
      "404": "Error",
    },
  },
  {
    method: "post",
    path: "/v1/batches/{id}/cancel",
    tag: "batches",
    summary: "Cancel a batch: queued jobs at once, running ones by their workers",
    responses: { "202": "BatchView", "404": "Error", "409": "Error" },
  },
  {
    method: "post",
    path: "/openai/v1/files",
    tag: "openai",
    summary: "Upload a batch input file (OpenAI Files API, purpose batch)",
    description:
      "Multipart with `file` and `purpose=batch`; at most DOCKET_MAX_BATCH_BODY_BYTES bytes. The bytes are kept in the database.",
    body: { "multipart/form-data": "FileUploadForm" },
    responses: { "200": "FileObject", "400": "Error", "413": "Error" },
  },
  {
    method: "get",
    path: "/openai/v1/files",
    tag: "openai",
    summary: "List files, newest first",
    query: [
      { name: "purpose", description: "batch or batch_output" },
      { name: "limit", description: "1 to 100, default 20" },
      { name: "after", description: "last id of the previous page" },
    ],
    responses: { "200": "FileList" },
  },
  {
    method: "get",
    path: "/openai/v1/files/{id}",
    tag: "openai",
    summary: "Get a file object",
    responses: { "200": "FileObject", "404": "Error" },
  },
  {
    method: "get",
    path: "/openai/v1/files/{id}/content",
    tag: "openai",
    summary: "Download a file: an upload's bytes, or a batch's output or error JSONL (BatchOutputLine per line)",
    responses: {
      "200": { description: "The file", contentType: "application/octet-stream" },
      "404": "Error",
    },
  },
  {
    method: "delete",
    path: "/openai/v1/files/{id}",
    tag: "openai",
    summary: "Delete a file",
    responses: { "200": "FileDeleted", "404": "Error" },
  },
  {
    method: "post",
    path: "/openai/v1/batches",
    tag: "openai",
    summary: "Create an OpenAI batch from an uploaded JSONL of chat completion requests",
    description:
      "Each BatchRequestLine becomes a chat job on the batch lane (customId = custom_id). A malformed line (not JSON, wrong method or url, duplicate custom_id) fails the whole batch with `errors`; a well-formed line whose body is not a valid chat completion request goes to the error file with status_code 400.",
    body: "CreateOpenAIBatchRequest",
    responses: { "200": "OpenAIBatch", "400": "Error", "404": "Error", "429": "Error" },
  },
  {
    method: "get",
    path: "/openai/v1/batches",
    tag: "openai",
    summary: "List OpenAI batches, newest first",
    query: [
      { name: "limit", description: "1 to 100, default 20" },
      { name: "after", description: "last id of the previous page" },
    ],
    responses: { "200": "OpenAIBatchList" },
  },
  {
    method: "get",
    path: "/openai/v1/batches/{id}",
    tag: "openai",
    summary: "Get an OpenAI batch; once it has ended, output_file_id and error_file_id name its result files",
    responses: { "200": "OpenAIBatch", "404": "Error" },
  },
  {
    method: "post",
    path: "/openai/v1/batches/{id}/cancel",
    tag: "openai",
    summary: "Cancel an OpenAI batch",
    responses: { "200": "OpenAIBatch", "404": "Error", "409": "Error" },
  },
  { method: "get", path: "/healthz", tag: "operations", summary: "Liveness", responses: { "200": { description: "alive" } } },
  {
    method: "get",
    path: "/readyz",
    tag: "operations",
    summary: "Readiness (NATS connected)",
    responses: { "200": { description: "ready" }, "503": { description: "not ready" } },
  },
  {
    method: "get",
    path: "/openapi.json",
    tag: "operations",
    summary: "This OpenAPI 3.1 document",
    responses: { "200": { description: "OpenAPI document" } },
  },
  {
    method: "get",
    path: "/docs",
    tag: "operations",
    summary: "API reference page (self-contained HTML)",
    responses: { "200": { description: "HTML", contentType: "text/html" } },
  },
];

const ref = (name: ComponentName) => ({ $ref: `#/components/schemas/${name}` });

function jsonSchema(name: ComponentName): Record<string, unknown> {
  const { schema, io } = COMPONENTS[name]!;
  const { $schema: _, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: "any" }) as Record<string, unknown>;
  return rest;
}

/** The OpenAPI 3.1 document for `operations`. */
export function openApiDocument(operations: Operation[] = OPERATIONS, version = "0.1.0") {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const op of operations) {
    const params = [...op.path.matchAll(/\{(\w+)\}/g)].map((m) => ({
      name: m[1],
      in: "path",
      required: true,
      schema: { type: "string" },
    }));
    const headers = (op.headers ?? []).map((h) => ({
      name: h.name,
      in: "header",
      required: false,
      description: h.description,
      schema: { type: "string" },
    }));
    const query = (op.query ?? []).map((q) => ({
      name: q.name,
      in: "query",
      required: false,
      description: q.description,
      schema: { type: "string" },
    }));
    const bodies = typeof op.body === "string" ? { "application/json": op.body } : op.body;
    const responses: Record<string, unknown> = {};
    for (const [status, r] of Object.entries(op.responses)) {
      const {
        description,
        contentType = "application/json",
        schema,
      } = typeof r === "string" ? { description: r === "Error" ? "{error: {code, message, field?}}" : `A ${r}`, schema: r } : r;
      responses[status] = { description, ...(schema ? { content: { [contentType]: { schema: ref(schema) } } } : {}) };
    }
    paths[op.path] ??= {};
    paths[op.path]![op.method] = {
      operationId: `${op.method}${op.path.replace(/[{}]/g, "").replace(/[/.]+(\w)/g, (_, c: string) => c.toUpperCase())}`,
      tags: [op.tag],
      summary: op.summary,
      ...(op.description ? { description: op.description } : {}),
      ...(accessOf(op.path) === "open" ? { security: [] } : {}),
      ...(params.length || headers.length || query.length ? { parameters: [...params, ...query, ...headers] } : {}),
      ...(bodies
        ? {
            requestBody: {
              required: true,
              content: Object.fromEntries(Object.entries(bodies).map(([type, name]) => [type, { schema: ref(name) }])),
            },
          }
        : {}),
      responses,
    };
  }
  const webhooks = Object.fromEntries(
    WEBHOOK_EVENT_TYPES.map((type) => [
      type,
      {
        post: {
          summary: `${type} (Standard Webhooks: webhook-id, webhook-timestamp, webhook-signature headers)`,
          requestBody: { content: { "application/json": { schema: ref("WebhookPayload") } } },
          responses: { "200": { description: "Any 2xx acknowledges the delivery; anything else is retried." } },
        },
      },
    ]),
  );
  return {
    openapi: "3.1.0",
    info: {
      title: "docket",
      version,
      description:
        "Private, local LLM document analysis at batch scale. When the server has DOCKET_API_KEY set, every route except /healthz, /readyz, /docs and /openapi.json needs `Authorization: Bearer <key>` (401 unauthorized without one); a key sees only its own jobs and batches (403 forbidden on another's).",
    },
    security: [{ bearer: [] }],
    paths,
    webhooks,
    components: {
      schemas: Object.fromEntries(Object.keys(COMPONENTS).map((name) => [name, jsonSchema(name)])),
      securitySchemes: { bearer: { type: "http", scheme: "bearer", description: "DOCKET_API_KEY or a key from POST /v1/keys" } },
    },
  };
}
export type OpenApiDocument = ReturnType<typeof openApiDocument>;
