import { z } from "zod";
import { CreatedKey, CreateJobRequest, CreateKeyRequest, ErrorResponse, JobView, KeyList, KeyView } from "../schema/api.ts";
import { ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, ModelList } from "../schema/openai.ts";
import { WEBHOOK_EVENT_TYPES, WebhookDeliveryList, WebhookPayload } from "../schema/webhook.ts";
import { accessOf } from "./auth/authenticate.ts";

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
};
type ComponentName = keyof typeof COMPONENTS;

export interface Operation {
  method: "get" | "post" | "delete";
  /** OpenAPI path, parameters in braces: /v1/jobs/{id}. */
  path: string;
  summary: string;
  description?: string;
  tag: string;
  body?: ComponentName;
  headers?: { name: string; description: string }[];
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
      ...(params.length || headers.length ? { parameters: [...params, ...headers] } : {}),
      ...(op.body ? { requestBody: { required: true, content: { "application/json": { schema: ref(op.body) } } } } : {}),
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
