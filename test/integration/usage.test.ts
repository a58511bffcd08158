import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { UsageReport } from "../../schema/api.ts";
import { apiCall } from "../helpers/http.ts";
import { startStack, type TestStack } from "../helpers/stack.ts";

const ADMIN = "test-admin-key-0123456789abcdefghijklmnop";

let stack: TestStack;
beforeAll(async () => {
  stack = await startStack({ env: { DOCKET_API_KEY: ADMIN, DOCKET_MAX_TOKENS: "8" } });
});
afterAll(() => stack?.stop());

const call = (method: string, path: string, key: string, body?: unknown) => apiCall(stack.producer.url, method, path, key, body);

const summarize = (text: string) => ({ task: "summarize", input: { text }, params: { maxTokens: 4 } });
const chat = { task: "chat", params: { maxTokens: 4, messages: [{ role: "user", content: "Hello" }] } };
const today = () => new Date().toISOString().slice(0, 10);

async function newKey(name: string, quotas?: Record<string, number | null>) {
  const r = await call("POST", "/v1/keys", ADMIN, { name, ...(quotas ? { quotas } : {}) });
  expect(r.status).toBe(201);
  return r.body as { id: string; key: string; quotas: Record<string, number | null> };
}

async function run(key: string, body: unknown): Promise<string> {
  const r = await call("POST", "/v1/jobs", key, body);
  expect(r.status).toBe(202);
  await stack.waitFor(r.body.id, ["succeeded", "failed"]);
  return r.body.id;
}

describe("usage per key", () => {
  it("GET /v1/usage: a key sees its own jobs, documents and tokens per day; the admin sees every key's and filters", async () => {
    const a = await newKey("team a");
    const b = await newKey("team b");
    const aJobs = [await run(a.key, summarize("The tenant pays rent.")), await run(a.key, chat)];
    await run(b.key, summarize("The landlord repairs the roof."));
    const results = aJobs.map((id) => stack.producer.store.get(id)!.result!.usage);

    const own = await call("GET", "/v1/usage", a.key);
    expect(own.status).toBe(200);
    const report = own.body as UsageReport;
    expect(report.data).toEqual([
      {
        keyId: a.id,
        keyName: "team a",
        day: today(),
        succeeded: 2,
        failed: 0,
        documents: 1,
        promptTokens: results[0]!.promptTokens + results[1]!.promptTokens,
        completionTokens: results[0]!.completionTokens + results[1]!.completionTokens,
        cachedTokens: (results[0]!.cachedTokens ?? 0) + (results[1]!.cachedTokens ?? 0),
      },
    ]);
    expect(report.totals).toMatchObject({ succeeded: 2, documents: 1 });

    expect((await call("GET", `/v1/usage?keyId=${b.id}`, a.key)).status).toBe(403);
    const all = (await call("GET", "/v1/usage", ADMIN)).body as UsageReport;
    expect(all.data.map((d) => d.keyName)).toEqual(expect.arrayContaining(["team a", "team b"]));
    const onlyB = (await call("GET", `/v1/usage?keyId=${b.id}`, ADMIN)).body as UsageReport;
    expect(onlyB.data).toHaveLength(1);
    expect(onlyB.data[0]).toMatchObject({ keyId: b.id, succeeded: 1, documents: 1 });
    const yesterday = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
    expect((await call("GET", `/v1/usage?to=${yesterday}`, ADMIN)).body.data).toEqual([]);
    expect((await call("GET", `/v1/usage?from=${today()}&to=${today()}`, a.key)).body.data).toHaveLength(1);
    expect((await call("GET", "/v1/usage?from=yesterday", a.key)).status).toBe(400);
  });

  it("/metrics counts tokens, jobs and documents per key name", async () => {
    const metrics = await call("GET", "/metrics", ADMIN);
    const usage = ((await call("GET", "/v1/usage", ADMIN)).body as UsageReport).data.find((d) => d.keyName === "team a")!;
    expect(metrics.text).toContain(`docket_key_tokens_total{key="team a",kind="prompt"} ${usage.promptTokens}`);
    expect(metrics.text).toContain(`docket_key_tokens_total{key="team a",kind="completion"} ${usage.completionTokens}`);
    expect(metrics.text).toContain('docket_key_jobs_total{key="team a",state="succeeded"} 2');
    expect(metrics.text).toContain('docket_key_documents_total{key="team a"} 1');
  });
});

describe("quotas", () => {
  it("a batch over the key's queued-jobs quota is refused whole: 429 quota_exceeded with Retry-After, nothing written", async () => {
    const c = await newKey("team c", { queuedJobs: 2 });
    expect(c.quotas).toEqual({ tokensPerDay: null, queuedJobs: 2 });
    const before = stack.producer.database.sqlite.prepare("select count(*) n from batches").get() as { n: number };
    const refused = await call("POST", "/v1/batches", c.key, {
      task: "summarize",
      items: [{ text: "one" }, { text: "two" }, { text: "three" }],
    });
    expect(refused.status).toBe(429);
    expect(refused.body.error.code).toBe("quota_exceeded");
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(stack.producer.database.sqlite.prepare("select count(*) n from batches").get()).toEqual(before);
    expect(stack.producer.database.sqlite.prepare("select count(*) n from jobs where owner = ?").get(c.id)).toEqual({ n: 0 });
    const fits = await call("POST", "/v1/batches", c.key, { task: "summarize", items: [{ text: "one" }, { text: "two" }] });
    expect(fits.status).toBe(202);
  });

  it("past the tokens-per-day quota a job is 429 until the next UTC day; lifting the quota (PATCH /v1/keys) lets it in", async () => {
    const d = await newKey("team d", { tokensPerDay: 150 });
    await run(d.key, summarize("The tenant pays."));
    const used = stack.producer.store.list({ limit: 10 }, d.id).rows[0]!.result!.usage;
    expect(used.promptTokens + used.completionTokens).toBeGreaterThan(100);

    const refused = await call("POST", "/v1/jobs", d.key, summarize("The tenant pays again."));
    expect(refused.status).toBe(429);
    expect(refused.body.error).toMatchObject({ code: "quota_exceeded" });
    expect(refused.body.error.message).toMatch(/150 tokens a day/);
    const midnight = Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate() + 1);
    expect(Math.abs(Number(refused.headers.get("retry-after")) - (midnight - Date.now()) / 1000)).toBeLessThan(5);

    const lifted = await call("PATCH", `/v1/keys/${d.id}`, ADMIN, { quotas: { tokensPerDay: null } });
    expect(lifted.status).toBe(200);
    expect(lifted.body.quotas).toEqual({ tokensPerDay: null, queuedJobs: null });
    expect((await call("POST", "/v1/jobs", d.key, summarize("The tenant pays again."))).status).toBe(202);
    expect((await call("PATCH", `/v1/keys/${d.id}`, d.key, { name: "mine" })).status).toBe(403);
  });
});
