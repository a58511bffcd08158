import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newId } from "../../producer/ids.ts";
import { apiCall } from "../helpers/http.ts";
import { startStack, type TestStack } from "../helpers/stack.ts";

const ADMIN = "test-admin-key-0123456789abcdefghijklmnop";

let stack: TestStack;
beforeAll(async () => {
  stack = await startStack({ env: { DOCKET_API_KEY: ADMIN, DOCKET_MAX_TOKENS: "8" } });
});
afterAll(() => stack?.stop());

const call = (method: string, path: string, key?: string, body?: unknown, headers: Record<string, string> = {}) =>
  apiCall(stack.producer.url, method, path, key, body, headers);

const job = { task: "summarize", input: { text: "The tenant pays rent monthly." }, params: { maxTokens: 4 } };

async function newKey(name: string): Promise<{ id: string; key: string }> {
  const r = await call("POST", "/v1/keys", ADMIN, { name });
  expect(r.status).toBe(201);
  return r.body as { id: string; key: string };
}

describe("API keys", () => {
  it("without a valid key every API route answers 401 unauthorized; health and docs stay open", async () => {
    for (const [method, path] of [
      ["GET", "/v1/jobs"],
      ["POST", "/v1/jobs"],
      ["GET", "/v1/batches/batch_x"],
      ["GET", "/v1/keys"],
      ["GET", "/openai/v1/models"],
      ["POST", "/openai/v1/chat/completions"],
      ["GET", "/metrics"],
      ["GET", "/v1/nowhere"],
    ] as const) {
      for (const key of [undefined, "dk_wrong", ADMIN.slice(0, -1)]) {
        const r = await call(method, path, key, method === "POST" ? job : undefined);
        expect(r.status, `${method} ${path} key=${key}`).toBe(401);
        expect(r.body.error.code).toBe("unauthorized");
        expect(r.headers.get("www-authenticate")).toMatch(/^Bearer/);
      }
    }
    for (const path of ["/healthz", "/readyz", "/docs", "/openapi.json"])
      expect((await call("GET", path)).status, path).toBe(200);
  });

  it("the admin creates, lists (never the secret) and revokes keys; a revoked key stops working", async () => {
    const a = await newKey("ci pipeline");
    expect(a.key).toMatch(/^dk_[A-Za-z0-9_-]{43}$/);
    expect(a.id).toMatch(/^key_[0-9a-z]{26}$/);
    expect((await call("GET", "/v1/jobs", a.key)).status).toBe(200);

    const list = await call("GET", "/v1/keys", ADMIN);
    expect(list.status).toBe(200);
    expect(list.body.data).toContainEqual({
      id: a.id,
      name: "ci pipeline",
      createdAt: expect.any(String),
      revokedAt: null,
      quotas: { tokensPerDay: null, queuedJobs: null },
      weight: 1,
    });
    expect(list.text).not.toContain(a.key);
    // Only the hash is stored.
    const stored = stack.producer.database.sqlite.prepare("select * from api_keys where id = ?").get(a.id) as Record<
      string,
      string
    >;
    expect(JSON.stringify(stored)).not.toContain(a.key);

    const revoked = await call("DELETE", `/v1/keys/${a.id}`, ADMIN);
    expect(revoked.status).toBe(200);
    expect(revoked.body.revokedAt).toEqual(expect.any(String));
    const after = await call("GET", "/v1/jobs", a.key);
    expect(after.status).toBe(401);
    expect(after.body.error.code).toBe("unauthorized");
    expect((await call("DELETE", "/v1/keys/key_unknown", ADMIN)).status).toBe(404);
    expect((await call("POST", "/v1/keys", ADMIN, { name: "" })).body.error).toMatchObject({
      code: "validation_failed",
      field: "name",
    });
  });

  it("a created key is not admin: /v1/keys, the dashboard's data and /metrics answer 403 forbidden", async () => {
    const a = await newKey("tenant");
    for (const [method, path] of [
      ["GET", "/v1/keys"],
      ["POST", "/v1/keys"],
      ["DELETE", `/v1/keys/${a.id}`],
      ["GET", "/dashboard/snapshot"],
      ["GET", "/dashboard/stream"],
      ["GET", "/metrics"],
    ] as const) {
      const r = await call(method, path, a.key, method === "POST" ? { name: "x" } : undefined);
      expect(r.status, `${method} ${path}`).toBe(403);
      expect(r.body.error.code).toBe("forbidden");
    }
    expect((await call("GET", "/metrics", ADMIN)).text).toContain("docket_");
  });

  it("the dashboard page asks for the admin key and trades it for a session cookie; HTTP Basic is not accepted", async () => {
    const page = await call("GET", "/dashboard");
    expect(page.status).toBe(200);
    expect(page.text).toContain("docket dashboard");
    expect((await call("GET", "/dashboard/session")).body).toEqual({ auth: true, signedIn: false });
    // What the old dashboard made a browser keep, and attach to any request to this origin.
    const basic = `Basic ${Buffer.from(`admin:${ADMIN}`).toString("base64")}`;
    for (const path of ["/dashboard/snapshot", "/v1/keys"]) {
      const r = await call("GET", path, undefined, undefined, { authorization: basic });
      expect(r.status, path).toBe(401);
      expect(r.headers.get("www-authenticate")).toMatch(/^Bearer/);
    }

    const tenant = await newKey("dashboard-tenant");
    expect((await call("POST", "/dashboard/session", undefined, { key: tenant.key })).body.error.code).toBe("forbidden");
    expect((await call("POST", "/dashboard/session", undefined, { key: "dk_wrong" })).body.error.code).toBe("unauthorized");
    const signIn = await call("POST", "/dashboard/session", undefined, { key: ADMIN });
    expect(signIn.status).toBe(204);
    const cookie = (signIn.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
    expect(cookie).toMatch(/^docket_session=/);
    expect((await call("GET", "/dashboard/snapshot", undefined, undefined, { cookie })).status).toBe(200);
    expect((await call("GET", "/dashboard/session", undefined, undefined, { cookie })).body).toEqual({
      auth: true,
      signedIn: true,
    });
  });
});

describe("ownership: each key sees only its own jobs and batches", () => {
  it("another key gets 403 on a job (get, cancel, events, webhooks) and never sees it listed; the admin sees all", async () => {
    const a = await newKey("a");
    const b = await newKey("b");
    const created = await call("POST", "/v1/jobs", a.key, { ...job, deadline: new Date(Date.now() + 60_000).toISOString() });
    expect(created.status).toBe(202);
    const id = created.body.id as string;
    expect(stack.producer.store.get(id)?.owner).toBe(a.id);

    for (const [method, path] of [
      ["GET", `/v1/jobs/${id}`],
      ["POST", `/v1/jobs/${id}/cancel`],
      ["GET", `/v1/jobs/${id}/events`],
      ["GET", `/v1/jobs/${id}/webhooks`],
    ] as const) {
      const r = await call(method, path, b.key);
      expect(r.status, `${method} ${path}`).toBe(403);
      expect(r.body.error.code).toBe("forbidden");
    }
    expect((await call("GET", "/v1/jobs/job_00000000000000000000000000", b.key)).status).toBe(404);

    const ids = async (key: string) =>
      ((await call("GET", "/v1/jobs?limit=1000", key)).body.data as { id: string }[]).map((j) => j.id);
    expect(await ids(a.key)).toContain(id);
    expect(await ids(b.key)).not.toContain(id);
    expect(await ids(ADMIN)).toContain(id);
    expect((await call("GET", `/v1/jobs/${id}`, a.key)).status).toBe(200);
    expect((await call("GET", `/v1/jobs/${id}`, ADMIN)).status).toBe(200);
    expect((await call("GET", `/v1/jobs/${id}/webhooks`, a.key)).status).toBe(200);
    await stack.waitFor(id, ["succeeded", "failed"], 30_000);
  });

  it("the same Idempotency-Key from two keys makes two jobs: one key never gets the other's job back", async () => {
    const a = await newKey("idem-a");
    const b = await newKey("idem-b");
    const headers = { "idempotency-key": "order-42" };
    const first = await call("POST", "/v1/jobs", a.key, job, headers);
    const again = await call("POST", "/v1/jobs", a.key, job, headers);
    const other = await call("POST", "/v1/jobs", b.key, job, headers);
    expect(first.status).toBe(202);
    expect(again.status).toBe(200);
    expect(again.body.id).toBe(first.body.id);
    expect(other.status).toBe(202);
    expect(other.body.id).not.toBe(first.body.id);
    expect(stack.producer.store.get(other.body.id)?.owner).toBe(b.id);
  });

  it("another key gets 403 on a batch (get, results, cancel); the batch's jobs are listed for their owner only", async () => {
    const a = await newKey("batch-a");
    const b = await newKey("batch-b");
    const created = await call("POST", "/v1/batches", a.key, {
      task: "summarize",
      params: { maxTokens: 4 },
      items: [{ text: "one" }, { text: "two" }],
    });
    expect(created.status).toBe(202);
    const batchId = created.body.id as string;
    expect(stack.producer.batches.get(batchId)?.owner).toBe(a.id);
    for (const [method, path] of [
      ["GET", `/v1/batches/${batchId}`],
      ["GET", `/v1/batches/${batchId}/results`],
      ["POST", `/v1/batches/${batchId}/cancel`],
    ] as const) {
      const r = await call(method, path, b.key);
      expect(r.status, `${method} ${path}`).toBe(403);
      expect(r.body.error.code).toBe("forbidden");
    }
    const listed = async (key: string) => (await call("GET", `/v1/jobs?batchId=${batchId}`, key)).body.data as unknown[];
    expect(await listed(a.key)).toHaveLength(2);
    expect(await listed(b.key)).toHaveLength(0);
    expect(await listed(ADMIN)).toHaveLength(2);
    expect((await call("GET", `/v1/batches/${batchId}`, a.key)).status).toBe(200);
  });
});

describe("OpenAI-compatible endpoint", () => {
  it("OpenAI files and batches belong to the key that made them: another key gets 403 and never sees them listed", async () => {
    const a = await newKey("files-a");
    const b = await newKey("files-b");
    const clientA = new OpenAI({ apiKey: a.key, baseURL: `${stack.producer.url}/openai/v1` });
    const clientB = new OpenAI({ apiKey: b.key, baseURL: `${stack.producer.url}/openai/v1` });
    const line = {
      custom_id: "r1",
      method: "POST",
      url: "/v1/chat/completions",
      body: { model: "m", messages: [{ role: "user", content: "hi" }], max_tokens: 4 },
    };
    const file = await clientA.files.create({ file: new File([`${JSON.stringify(line)}\n`], "in.jsonl"), purpose: "batch" });
    const batch = await clientA.batches.create({
      input_file_id: file.id,
      endpoint: "/v1/chat/completions",
      completion_window: "24h",
    });

    await expect(clientB.files.retrieve(file.id)).rejects.toMatchObject({ status: 403 });
    await expect(clientB.files.content(file.id)).rejects.toMatchObject({ status: 403 });
    await expect(clientB.files.delete(file.id)).rejects.toMatchObject({ status: 403 });
    await expect(clientB.batches.retrieve(batch.id)).rejects.toMatchObject({ status: 403 });
    await expect(clientB.batches.cancel(batch.id)).rejects.toMatchObject({ status: 403 });
    await expect(
      clientB.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" }),
    ).rejects.toMatchObject({ status: 403 });
    expect((await clientB.files.list()).data.map((f) => f.id)).not.toContain(file.id);
    expect((await clientB.batches.list()).data.map((x) => x.id)).not.toContain(batch.id);

    expect((await clientA.files.retrieve(file.id)).id).toBe(file.id);
    expect((await clientA.batches.retrieve(batch.id)).id).toBe(batch.id);
    expect((await clientA.files.list()).data.map((f) => f.id)).toContain(file.id);
    expect((await call("GET", `/v1/batches/${batch.id}`, b.key)).status).toBe(403);
  });

  it("the openai client's apiKey is the docket key: a valid key gets a completion, a wrong one AuthenticationError", async () => {
    const a = await newKey("openai");
    const client = (apiKey: string) => new OpenAI({ apiKey, baseURL: `${stack.producer.url}/openai/v1`, maxRetries: 0 });
    const messages = [{ role: "user" as const, content: "Say hi." }];
    const completion = await client(a.key).chat.completions.create({ model: "docket", messages, max_tokens: 4 });
    expect(completion.object).toBe("chat.completion");
    const jobId = completion.id.replace(/^chatcmpl-/, "");
    expect(stack.producer.store.get(jobId)?.owner).toBe(a.id);
    await expect(client("dk_wrong").chat.completions.create({ model: "docket", messages })).rejects.toBeInstanceOf(
      OpenAI.AuthenticationError,
    );
  });

  it("/openai/v1/models lists what live workers serve, never a model only another key's job reported", async () => {
    const a = await newKey("models-a");
    const b = await newKey("models-b");
    // A job of key A whose worker reported a model only A's work used (a real row, the real recorder).
    const id = newId("job");
    const at = new Date().toISOString();
    const msg = {
      v: 1 as const,
      id,
      lane: "default" as const,
      task: "summarize" as const,
      input: { text: "x" },
      params: {},
      submittedAt: at,
    };
    stack.producer.store.insert(msg, undefined, undefined, a.id);
    stack.producer.recorder.apply({
      v: 1,
      jobId: id,
      kind: "completed",
      attempt: 1,
      workerId: "w-test",
      at,
      result: {
        text: "done",
        usage: { promptTokens: 1, completionTokens: 1 },
        timings: { queueMs: 0, runMs: 1, tokensPerSecond: 1 },
        model: "tenant-a-private-model",
      },
    });
    const models = async (key: string) =>
      ((await call("GET", "/openai/v1/models", key)).body.data as { id: string }[]).map((m) => m.id);
    // No worker serves that model: it is job data, not a served model, and no key sees it listed.
    const seenByA = await models(a.key);
    const seenByB = await models(b.key);
    expect(seenByB).not.toContain("tenant-a-private-model");
    expect(seenByA).not.toContain("tenant-a-private-model");
    expect(await models(ADMIN)).not.toContain("tenant-a-private-model");
    // Every key sees the same list: "docket" (the default model) and what the live worker serves.
    expect(seenByA).toEqual(seenByB);
    expect(seenByB).toContain("docket");
    expect(seenByB).toContain(stack.worker?.engine.modelName.toLowerCase().replace(/[^a-z0-9_-]/g, "-"));
  });
});

describe("security headers", () => {
  it("every answer (JSON, errors, pages) carries nosniff, DENY framing, no referrer and a CSP", async () => {
    for (const r of [await call("GET", "/healthz"), await call("GET", "/v1/jobs"), await call("GET", "/docs")]) {
      expect(r.headers.get("x-content-type-options")).toBe("nosniff");
      expect(r.headers.get("x-frame-options")).toBe("DENY");
      expect(r.headers.get("referrer-policy")).toBe("no-referrer");
      expect(r.headers.get("content-security-policy")).toMatch(/default-src 'none'.*script-src 'sha256-.*frame-ancestors 'none'/);
    }
  });
});
