import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CONTROL_BUCKET, cancelKey } from "../../schema/subjects.ts";
import { startStack, type TestStack } from "../helpers/stack.ts";

// No worker: jobs stay queued, so the queue fills and queued jobs can be cancelled.
let stack: TestStack;
beforeAll(async () => {
  stack = await startStack({ worker: false, env: { DOCKET_MAX_QUEUED_JOBS: "6" } });
});
afterAll(() => stack?.stop());

async function post(path: string, body: unknown) {
  const res = await fetch(`${stack.producer.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, any> };
}
const count = () => (stack.producer.database.sqlite.prepare("SELECT count(*) AS n FROM jobs").get() as { n: number }).n;
const items = (n: number) => Array.from({ length: n }, (_, i) => ({ text: `doc ${i}` }));

describe("backpressure and cancel with the queue full", () => {
  it("a queued job is cancelled at once in SQLite, with a cancel flag in docket-control", async () => {
    const created = await post("/v1/jobs", { task: "summarize", input: { text: "x" } });
    const r = await post(`/v1/jobs/${created.body.id}/cancel`, {});
    expect(r.status).toBe(202);
    expect(r.body.state).toBe("cancelled");
    expect(stack.producer.store.get(created.body.id)?.state).toBe("cancelled");
    const kv = await new Kvm(jetstream(stack.producer.nc)).open(CONTROL_BUCKET);
    expect(await kv.get(cancelKey(created.body.id))).not.toBeNull();
    // The cancelled event went to DOCKET_EVENTS too, so the log still rebuilds the database.
    const again = await post(`/v1/jobs/${created.body.id}/cancel`, {});
    expect(again.status).toBe(409);
  });

  it("a batch larger than the room left is refused whole: 429 with Retry-After, nothing written", async () => {
    // One message (the cancelled job's) is still in DOCKET_JOBS: room for 5.
    const before = count();
    const r = await post("/v1/batches", { task: "summarize", items: items(6) });
    expect(r.status).toBe(429);
    expect(r.headers.get("retry-after")).toBe("5");
    expect(r.body.error.code).toBe("backpressure");
    expect(r.body.error.message).toMatch(/room for 5 jobs/);
    expect(count()).toBe(before);
    expect(stack.producer.database.sqlite.prepare("SELECT count(*) AS n FROM batches").get()).toEqual({ n: 0 });
  });

  it("a batch that fits is accepted, and the next single job past the limit gets 429 and no row", async () => {
    const ok = await post("/v1/batches", { task: "summarize", items: items(5) });
    expect(ok.status).toBe(202);
    const before = count();
    const r = await post("/v1/jobs", { task: "summarize", input: { text: "one too many" } });
    expect(r.status).toBe(429);
    expect(r.headers.get("retry-after")).toBe("5");
    expect(count()).toBe(before);
  });
});
