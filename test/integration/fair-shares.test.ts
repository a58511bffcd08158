import { jetstreamManager } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { shareWeight } from "../../runtime/provision.ts";
import type { BatchView } from "../../schema/batch.ts";
import { JOBS_STREAM, shareConsumer } from "../../schema/subjects.ts";
import { apiCall } from "../helpers/http.ts";
import { startStack, type TestStack } from "../helpers/stack.ts";

const ADMIN = "test-admin-key-0123456789abcdefghijklmnop";

let stack: TestStack;
beforeAll(async () => {
  stack = await startStack({ env: { DOCKET_API_KEY: ADMIN } });
});
afterAll(() => stack?.stop());

const call = (method: string, path: string, key: string, body?: unknown) => apiCall(stack.producer.url, method, path, key, body);

async function newKey(name: string, weight?: number) {
  const r = await call("POST", "/v1/keys", ADMIN, { name, ...(weight ? { weight } : {}) });
  expect(r.status).toBe(201);
  return r.body as { id: string; key: string; weight: number };
}

async function batch(key: string, n: number, text: string): Promise<string> {
  const items = Array.from({ length: n }, (_, i) => ({ text: `${text} Clause ${i}.` }));
  const r = await call("POST", "/v1/batches", key, { task: "summarize", params: { maxTokens: 2 }, items });
  expect(r.status).toBe(202);
  return r.body.id;
}

describe("fair shares between API keys", () => {
  it("key A queues 2,000 jobs, then key B 20: B's 20 finish while A still has more than 1,500 queued", async () => {
    const a = await newKey("records office");
    const b = await newKey("contracts desk");
    const aBatch = await batch(a.key, 2_000, "The tenant pays rent monthly.");
    const bBatch = await batch(b.key, 20, "The supplier delivers within ten days.");

    expect(await stack.waitForBatch(bBatch, ["completed"], 120_000)).toBe("completed");
    const aView = (await call("GET", `/v1/batches/${aBatch}`, a.key)).body as BatchView;
    expect(aView.counts.queued).toBeGreaterThan(1_500);
    // Each key's jobs wait on its own consumer; the worker charged both keys' tokens.
    const jsm = await jetstreamManager(stack.producer.nc);
    expect((await jsm.consumers.info(JOBS_STREAM, shareConsumer("batch", a.id))).num_pending).toBeGreaterThan(1_400);
    expect(Object.keys(stack.worker!.status().fairShare)).toEqual(expect.arrayContaining([a.id, b.id]));

    await call("POST", `/v1/batches/${aBatch}/cancel`, a.key);
    await stack.waitForBatch(aBatch, ["cancelled"], 60_000);
  }, 180_000);

  it("within a key's share its jobs with a deadline go first: 5 due jobs queued after 300 finish while 250 wait", async () => {
    const e = await newKey("billing");
    const bulk = await batch(e.key, 300, "Invoice line.");
    const items = Array.from({ length: 5 }, (_, i) => ({ text: `Urgent claim ${i}.` }));
    const deadline = new Date(Date.now() + 3_600_000).toISOString();
    const r = await call("POST", "/v1/batches", e.key, { task: "summarize", params: { maxTokens: 2 }, items, deadline });
    expect(r.status).toBe(202);
    expect(await stack.waitForBatch(r.body.id, ["completed"], 60_000)).toBe("completed");
    expect(((await call("GET", `/v1/batches/${bulk}`, e.key)).body as BatchView).counts.queued).toBeGreaterThan(250);
    await call("POST", `/v1/batches/${bulk}/cancel`, e.key);
    await stack.waitForBatch(bulk, ["cancelled"], 60_000);
  }, 120_000);

  it("a key's weight is stored, shown, and carried to its consumers, where workers read it", async () => {
    const c = await newKey("radiology", 3);
    expect(c.weight).toBe(3);
    const job = await call("POST", "/v1/jobs", c.key, { task: "summarize", lane: "default", input: { text: "A scan." } });
    expect(job.status).toBe(202);
    await stack.waitFor(job.body.id, ["succeeded"]);
    const jsm = await jetstreamManager(stack.producer.nc);
    const consumer = shareConsumer("default", c.id);
    expect(shareWeight((await jsm.consumers.info(JOBS_STREAM, consumer)).config.description)).toBe(3);

    const patched = await call("PATCH", `/v1/keys/${c.id}`, ADMIN, { weight: 0.5 });
    expect(patched.status).toBe(200);
    expect(patched.body.weight).toBe(0.5);
    expect(shareWeight((await jsm.consumers.info(JOBS_STREAM, consumer)).config.description)).toBe(0.5);
    expect((await call("PATCH", `/v1/keys/${c.id}`, ADMIN, { weight: 0 })).status).toBe(400);
  });

  it("the admin key's jobs and the interactive lane keep the lane's own consumers", async () => {
    const jsm = await jetstreamManager(stack.producer.nc);
    const before = new Set<string>();
    for await (const ci of jsm.consumers.list(JOBS_STREAM)) before.add(ci.name);
    const d = await newKey("triage desk");
    const admin = await call("POST", "/v1/jobs", ADMIN, { task: "summarize", lane: "batch", input: { text: "Admin's." } });
    const person = await call("POST", "/v1/jobs", d.key, { task: "summarize", lane: "interactive", input: { text: "Now." } });
    expect(await stack.waitFor(admin.body.id, ["succeeded"])).toBe("succeeded");
    expect(await stack.waitFor(person.body.id, ["succeeded"])).toBe("succeeded");
    const after: string[] = [];
    for await (const ci of jsm.consumers.list(JOBS_STREAM)) if (!before.has(ci.name)) after.push(ci.name);
    expect(after).toEqual([]);
  });
});

describe("queue position with fair shares (no worker: jobs stay queued)", () => {
  let idle: TestStack;
  beforeAll(async () => {
    idle = await startStack({ worker: false, env: { DOCKET_API_KEY: ADMIN } });
  });
  afterAll(() => idle?.stop());
  const at = (method: string, path: string, key: string, body?: unknown) => apiCall(idle.producer.url, method, path, key, body);

  /** Submits `n` equal jobs as one batch; their ids in line order. */
  async function equalJobs(key: string, n: number, deadline?: string): Promise<string[]> {
    const items = Array.from({ length: n }, () => ({ text: "The same clause, every time." }));
    const r = await at("POST", "/v1/batches", key, { task: "summarize", params: { maxTokens: 8 }, items, deadline });
    expect(r.status).toBe(202);
    return idle.producer.store.batchPage(r.body.id, -1, n).map((j) => j.id);
  }
  const queueOf = async (key: string, id: string) => (await at("GET", `/v1/jobs/${id}`, key)).body.queue;

  it("a job's place counts its own key's jobs ahead and the part of other keys' work their shares serve meanwhile", async () => {
    const a = (await at("POST", "/v1/keys", ADMIN, { name: "a" })).body as { id: string; key: string };
    const b = (await at("POST", "/v1/keys", ADMIN, { name: "b" })).body as { id: string; key: string };
    const aJobs = await equalJobs(a.key, 10);
    const bJobs = await equalJobs(b.key, 3);

    // B queued after A's ten, but its first job is next: fair shares, not first come first served.
    expect(await queueOf(b.key, bJobs[0]!)).toMatchObject({ position: 1, keyPosition: 1 });
    // Before B's third starts, B has two jobs done and A as much work: two of A's.
    expect(await queueOf(b.key, bJobs[2]!)).toMatchObject({ position: 5, keyPosition: 3 });
    // Before A's tenth, A runs nine and B all three of its own.
    expect(await queueOf(a.key, aJobs[9]!)).toMatchObject({ position: 13, keyPosition: 10 });

    // Weight 2 for B: for each of B's jobs, half of one of A's.
    expect((await at("PATCH", `/v1/keys/${b.id}`, ADMIN, { weight: 2 })).status).toBe(200);
    expect(await queueOf(b.key, bJobs[2]!)).toMatchObject({ position: 4, keyPosition: 3 });

    // A's job with a deadline goes first within A's share.
    const [due] = await equalJobs(a.key, 1, new Date(Date.now() + 3_600_000).toISOString());
    expect(await queueOf(a.key, due!)).toMatchObject({ keyPosition: 1 });
    expect(await queueOf(a.key, aJobs[0]!)).toMatchObject({ keyPosition: 2 });
  });
});
