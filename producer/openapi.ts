import { z } from "zod";
import {
  CreatedKey,
  CreateJobRequest,
  CreateKeyRequest,
  DashboardSession,
  DashboardSignIn,
  ErrorResponse,
  JobView,
  KeyList,
  KeyView,
  UpdateKeyRequest,
  UsageReport,
} from "../schema/api.ts";
import { BatchItem, BatchResultLine, BatchRetried, BatchView, CreateBatchRequest, RejectedItem } from "../schema/batch.ts";
import {
  CreateDocumentJobsRequest,
  CreateDocumentRequest,
  DocumentDeleted,
  DocumentList,
  DocumentView,
} from "../schema/document.ts";
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
import type { Access } from "./auth/authenticate.ts";

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
  deadline: z.string().optional().meta({ description: "ISO time every job carries" }),
  completionWindow: z.string().optional().meta({ description: "e.g. 24h: unfinished then, the batch expires" }),
});
const DocumentUploadForm = z.object({
  file: z.file().meta({ description: "txt, md, pdf or docx" }),
  title: z.string().max(1024).optional().meta({ description: "default: the file name" }),
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
export const COMPONENTS = {
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
  UpdateKeyRequest: { schema: UpdateKeyRequest, io: "input" },
  CreatedKey: { schema: CreatedKey, io: "output" },
  KeyView: { schema: KeyView, io: "output" },
  KeyList: { schema: KeyList, io: "output" },
  DashboardSignIn: { schema: DashboardSignIn, io: "input" },
  DashboardSession: { schema: DashboardSession, io: "output" },
  CreateBatchRequest: { schema: CreateBatchRequest, io: "input" },
  BatchItem: { schema: BatchItem, io: "input" },
  BatchUploadForm: { schema: BatchUploadForm, io: "input" },
  BatchView: { schema: BatchView, io: "output" },
  BatchCreated: { schema: BatchCreated, io: "output" },
  BatchRetried: { schema: BatchRetried, io: "output" },
  UsageReport: { schema: UsageReport, io: "output" },
  BatchResultLine: { schema: BatchResultLine, io: "output" },
  JobList: { schema: JobList, io: "output" },
  CreateDocumentRequest: { schema: CreateDocumentRequest, io: "input" },
  DocumentUploadForm: { schema: DocumentUploadForm, io: "input" },
  DocumentView: { schema: DocumentView, io: "output" },
  DocumentList: { schema: DocumentList, io: "output" },
  DocumentDeleted: { schema: DocumentDeleted, io: "output" },
  CreateDocumentJobsRequest: { schema: CreateDocumentJobsRequest, io: "input" },
  FileUploadForm: { schema: FileUploadForm, io: "input" },
  FileObject: { schema: FileObject, io: "output" },
  FileList: { schema: FileList, io: "output" },
  FileDeleted: { schema: FileDeleted, io: "output" },
  BatchRequestLine: { schema: BatchRequestLine, io: "input" },
  CreateOpenAIBatchRequest: { schema: CreateOpenAIBatchRequest, io: "input" },
  OpenAIBatch: { schema: OpenAIBatch, io: "output" },
  OpenAIBatchList: { schema: OpenAIBatchList, io: "output" },
  BatchOutputLine: { schema: BatchOutputLine, io: "output" },
} satisfies Record<string, { schema: z.ZodType; io: "input" | "output" }>;
export type ComponentName = keyof typeof COMPONENTS;

/** A route's OpenAPI entry, written on its declaration (producer/route.ts). */
export interface OperationDoc {
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

/** What the document needs of a route: its entry, where it is and who may call it. */
export interface DocumentedRoute extends OperationDoc {
  method: "get" | "post" | "patch" | "delete";
  /** OpenAPI path, parameters in braces: /v1/jobs/{id}. */
  path: string;
  access: Access;
}

const ref = (name: ComponentName) => ({ $ref: `#/components/schemas/${name}` });

function jsonSchema(name: ComponentName): Record<string, unknown> {
  const { schema, io } = COMPONENTS[name]!;
  const { $schema: _, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: "any" }) as Record<string, unknown>;
  return rest;
}

/** The OpenAPI 3.1 document for the routes docket serves. */
export function openApiDocument(operations: readonly DocumentedRoute[], version = "0.1.0") {
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
      ...(op.access === "open" ? { security: [] } : {}),
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
        "Private, local LLM document analysis at batch scale. When the server has DOCKET_API_KEY set, every route except /healthz, /readyz, /docs, /openapi.json and the dashboard's page and sign-in needs `Authorization: Bearer <key>` (401 unauthorized without one); a key sees only its own jobs and batches (403 forbidden on another's). JSON bodies need `content-type: application/json` (415 unsupported_media_type otherwise); a request that changes something with the Origin of another site is 403 origin_not_allowed, and a Host the server does not answer to is 403 host_not_allowed (see DOCKET_PUBLIC_URL).",
    },
    security: [{ bearer: [] }],
    paths,
    webhooks,
    components: {
      schemas: Object.fromEntries((Object.keys(COMPONENTS) as ComponentName[]).map((name) => [name, jsonSchema(name)])),
      securitySchemes: { bearer: { type: "http", scheme: "bearer", description: "DOCKET_API_KEY or a key from POST /v1/keys" } },
    },
  };
}
export type OpenApiDocument = ReturnType<typeof openApiDocument>;
