import { describe, expect, it } from "vitest";
import { type AppDeps, createApp } from "../producer/app.ts";
import { OriginPolicy } from "../producer/origin-policy.ts";
import { createLogger } from "../runtime/log.ts";
import { CreateJobRequest } from "../schema/api.ts";
import { ChatCompletionRequest } from "../schema/openai.ts";

/** The real app; no handler here touches a store, so the services are left out. */
const app = createApp({
  log: createLogger("test", "silent"),
  keys: { enabled: false },
  maxBody: 1024 * 1024,
  maxBatchBody: 1024 * 1024,
  notReady: async () => undefined,
  origins: new OriginPolicy({ host: "127.0.0.1", publicUrls: [] }),
} as unknown as AppDeps);

async function document() {
  const res = await app.request("/openapi.json");
  expect(res.status).toBe(200);
  return (await res.json()) as Record<string, any>;
}

/** Keys a client must send: those whose schema refuses `undefined`. */
const requiredKeys = (shape: Record<string, { safeParse(v: unknown): { success: boolean } }>) =>
  Object.entries(shape)
    .filter(([, s]) => !s.safeParse(undefined).success)
    .map(([k]) => k)
    .sort();

describe("/openapi.json", () => {
  it("is an OpenAPI 3.1 document whose every $ref resolves", async () => {
    const doc = await document();
    expect(doc.openapi).toBe("3.1.0");
    expect(doc.info).toMatchObject({ title: "docket", version: expect.any(String) });
    for (const path of [
      "/v1/jobs",
      "/v1/jobs/{id}",
      "/v1/jobs/{id}/webhooks",
      "/openai/v1/chat/completions",
      "/openai/v1/models",
    ]) {
      expect(doc.paths[path], path).toBeDefined();
    }
    for (const [path, methods] of Object.entries<Record<string, any>>(doc.paths)) {
      for (const op of Object.values<Record<string, any>>(methods)) {
        expect(Object.keys(op.responses).length, path).toBeGreaterThan(0);
        expect(op.operationId).toMatch(/^\w+$/);
      }
    }
    const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"#\/components\/schemas\/(\w+)"/g)].map((m) => m[1]!);
    expect(refs.length).toBeGreaterThan(5);
    for (const name of refs) expect(doc.components.schemas[name], name).toBeDefined();
    expect(Object.keys(doc.webhooks)).toEqual(expect.arrayContaining(["job.succeeded", "job.failed", "batch.completed"]));
  });

  it("documents the batch, job list, document and OpenAI Files + Batch routes, with multipart and JSONL bodies", async () => {
    const doc = await document();
    const expected: [string, string][] = [
      ["get", "/v1/jobs"],
      ["post", "/v1/jobs/{id}/cancel"],
      ["get", "/v1/jobs/{id}/events"],
      ["post", "/v1/batches"],
      ["get", "/v1/batches/{id}"],
      ["get", "/v1/batches/{id}/results"],
      ["post", "/v1/batches/{id}/cancel"],
      ["post", "/v1/documents"],
      ["get", "/v1/documents"],
      ["get", "/v1/documents/{id}"],
      ["delete", "/v1/documents/{id}"],
      ["post", "/v1/documents/{id}/jobs"],
      ["post", "/openai/v1/files"],
      ["get", "/openai/v1/files"],
      ["get", "/openai/v1/files/{id}"],
      ["get", "/openai/v1/files/{id}/content"],
      ["delete", "/openai/v1/files/{id}"],
      ["post", "/openai/v1/batches"],
      ["get", "/openai/v1/batches"],
      ["get", "/openai/v1/batches/{id}"],
      ["post", "/openai/v1/batches/{id}/cancel"],
    ];
    for (const [method, path] of expected) expect(doc.paths[path]?.[method], `${method} ${path}`).toBeDefined();
    expect(Object.keys(doc.paths["/v1/batches"].post.requestBody.content).sort()).toEqual([
      "application/json",
      "application/jsonl",
      "application/jsonlines",
      "application/x-jsonlines",
      "application/x-ndjson",
      "multipart/form-data",
    ]);
    expect(Object.keys(doc.paths["/v1/documents"].post.requestBody.content).sort()).toEqual([
      "application/json",
      "multipart/form-data",
    ]);
    expect(doc.components.schemas.FileUploadForm.properties.file).toMatchObject({ type: "string", format: "binary" });
    expect(doc.components.schemas.OpenAIBatch.properties.status.enum).toContain("cancelling");
    expect(doc.paths["/openai/v1/batches"].get.parameters.map((p: { name: string }) => p.name)).toEqual(["limit", "after"]);
  });

  it("documents the scheduler's routes: retry, usage, key quotas, and the queue estimate of job and batch views", async () => {
    const doc = await document();
    const expected: [string, string][] = [
      ["post", "/v1/jobs/{id}/retry"],
      ["post", "/v1/batches/{id}/retry"],
      ["get", "/v1/usage"],
      ["patch", "/v1/keys/{id}"],
    ];
    for (const [method, path] of expected) expect(doc.paths[path]?.[method], `${method} ${path}`).toBeDefined();
    expect(doc.paths["/v1/batches/{id}/retry"].post.parameters.map((p: { name: string }) => p.name)).toContain("code");
    expect(doc.paths["/v1/usage"].get.parameters.map((p: { name: string }) => p.name)).toEqual(["keyId", "from", "to"]);
    for (const view of ["JobView", "BatchView"]) expect(doc.components.schemas[view].properties.queue, view).toBeDefined();
    expect(doc.components.schemas.CreateKeyRequest.properties.quotas).toBeDefined();
    expect(doc.components.schemas.CreateBatchRequest.properties).toHaveProperty("completionWindow");
    expect(Object.keys(doc.webhooks)).toContain("batch.expired");
  });

  it("POST /v1/jobs takes the CreateJobRequest schema the route validates with", async () => {
    const doc = await document();
    const body = doc.paths["/v1/jobs"].post.requestBody.content["application/json"].schema;
    const schema = doc.components.schemas[body.$ref.split("/").pop()];
    expect(schema.type).toBe("object");
    expect([...schema.required].sort()).toEqual(requiredKeys(CreateJobRequest.shape));
    expect(Object.keys(schema.properties).sort()).toEqual(Object.keys(CreateJobRequest.shape).sort());
    expect(schema.properties.webhookUrl).toMatchObject({ type: "string", format: "uri" });
    expect(doc.paths["/v1/jobs"].post.responses["202"].content["application/json"].schema.$ref).toBe(
      "#/components/schemas/JobView",
    );
  });

  it("POST /openai/v1/chat/completions takes the ChatCompletionRequest schema", async () => {
    const doc = await document();
    const schema = doc.components.schemas.ChatCompletionRequest;
    expect([...schema.required].sort()).toEqual(requiredKeys(ChatCompletionRequest.shape));
    expect(schema.required).toEqual(expect.arrayContaining(["model", "messages"]));
  });
});

describe("route declarations", () => {
  it("every route the app serves is in the document, and the document names no route the app lacks", async () => {
    const doc = await document();
    const served = new Set(
      app.routes.filter((r) => r.method !== "ALL").map((r) => `${r.method.toLowerCase()} ${r.path.replace(/:(\w+)/g, "{$1}")}`),
    );
    const documented = new Set(
      Object.entries<Record<string, unknown>>(doc.paths).flatMap(([path, methods]) =>
        Object.keys(methods).map((m) => `${m} ${path}`),
      ),
    );
    expect([...served].sort()).toEqual([...documented].sort());
    for (const route of ["get /metrics", "get /dashboard", "get /healthz", "post /v1/keys"]) expect(documented).toContain(route);
  });

  it("the access level declared on a route is the document's: open routes need no key, the rest a bearer key", async () => {
    const doc = await document();
    const open = Object.entries<Record<string, { security?: unknown[] }>>(doc.paths)
      .flatMap(([path, methods]) => Object.entries(methods).map(([m, op]) => [`${m} ${path}`, op.security] as const))
      .filter(([, security]) => Array.isArray(security) && security.length === 0)
      .map(([name]) => name)
      .sort();
    expect(open).toEqual([
      "delete /dashboard/session",
      "get /dashboard",
      "get /dashboard/session",
      "get /docs",
      "get /healthz",
      "get /openapi.json",
      "get /readyz",
      "post /dashboard/session",
    ]);
    expect(doc.security).toEqual([{ bearer: [] }]);
  });
});

describe("/docs", () => {
  it("is a self-contained HTML page naming every route, with no external assets", async () => {
    const res = await app.request("/docs");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/text\/html/);
    const html = await res.text();
    for (const route of ["/v1/jobs", "/v1/jobs/{id}/webhooks", "/openai/v1/chat/completions", "/openapi.json"]) {
      expect(html).toContain(route);
    }
    expect(html).toContain("CreateJobRequest");
    expect(html).toContain("job.succeeded");
    expect(html).not.toMatch(/<script|<link|src="http|href="http/);
  });
});
