import { Kvm } from "@nats-io/kv";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROMPT_TOKEN_COST } from "../../producer/queue-estimate.ts";
import type { WorkerHeartbeat } from "../../schema/heartbeat.ts";
import type { QueueEstimate } from "../../schema/queue.ts";
import { CONTROL_BUCKET, workerKey } from "../../schema/subjects.ts";
import { startStack, type TestStack } from "../helpers/stack.ts";

/** No worker: jobs stay queued; a heartbeat put in docket-control (as a worker puts it) gives the throughput. */
let stack: TestStack;
beforeAll(async () => {
  stack = await startStack({ worker: false });
});
afterAll(() => stack?.stop());

async function call(method: string, path: string, body?: unknown) {
  const res = await fetch(`${stack.producer.url}${path}`, {
    method,
    ...(body !== undefined ? { headers: { "content-type": "application/json" }, body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

const job = (lane: string, bytes: number, maxTokens: number) => ({
  task: "summarize",
  lane,
  input: { text: "x".repeat(bytes) },
  params: { maxTokens },
});
const row = (id: string) => stack.producer.store.get(id)!;
const work = (id: string) => row(id).maxTokens! + row(id).estimatedPromptTokens! * PROMPT_TOKEN_COST;
const tokens = (id: string) => row(id).maxTokens! + row(id).estimatedPromptTokens!;

describe("queue position and ETA", () => {
  const ids: Record<string, string> = {};

  it("a queued job's view says its place in its lane and the estimated tokens ahead; no worker, no times", async () => {
    ids.b1 = (await call("POST", "/v1/jobs", job("batch", 400, 10))).body.id;
    ids.b2 = (await call("POST", "/v1/jobs", job("batch", 800, 20))).body.id;
    ids.b3 = (await call("POST", "/v1/jobs", job("batch", 40, 30))).body.id;
    ids.d1 = (await call("POST", "/v1/jobs", job("default", 4000, 50))).body.id;
    // 40 tokens of task prompt + 400 bytes / 4
    expect(row(ids.b1!)).toMatchObject({ estimatedPromptTokens: 140, maxTokens: 10 });

    const b3 = (await call("GET", `/v1/jobs/${ids.b3}`)).body;
    expect(b3.queue).toEqual({
      position: 3,
      keyPosition: 3,
      ahead: { jobs: 2, tokens: tokens(ids.b1!) + tokens(ids.b2!) },
      estimatedStartAt: null,
      estimatedFinishAt: null,
      tokensPerSecond: null,
    });
    expect((await call("GET", `/v1/jobs/${ids.d1}`)).body.queue).toMatchObject({ position: 1, ahead: { jobs: 0, tokens: 0 } });
  });

  it("with the throughput a worker reports, start and finish follow the work ahead, lanes served first included", async () => {
    const kv = await new Kvm(stack.producer.nc).open(CONTROL_BUCKET);
    const now = new Date().toISOString();
    const heartbeat: WorkerHeartbeat = {
      v: 1,
      id: "eta-test",
      model: "test",
      batchSize: 1,
      sequences: 1,
      running: 1,
      tokensPerSecond: 100,
      startedAt: now,
      at: now,
    };
    await kv.put(workerKey("eta-test"), JSON.stringify(heartbeat));
    let view: Record<string, any> = {};
    for (const until = Date.now() + 10_000; Date.now() < until; await new Promise((r) => setTimeout(r, 50))) {
      view = (await call("GET", `/v1/jobs/${ids.b3}`)).body;
      if (view.queue.tokensPerSecond !== null) break;
    }
    const q = view.queue as QueueEstimate;
    expect(q.tokensPerSecond).toBe(100);
    // One sequence: b3 starts once d1 (default lane, served first), b1 and b2 are done, and runs alone.
    const startIn = (work(ids.d1!) + work(ids.b1!) + work(ids.b2!)) / 100;
    const askedAt = Date.parse(q.estimatedStartAt!) - startIn * 1000;
    expect(Math.abs(askedAt - Date.now())).toBeLessThan(2_000);
    expect(Date.parse(q.estimatedFinishAt!) - Date.parse(q.estimatedStartAt!)).toBeCloseTo((work(ids.b3!) / 100) * 1000, -1);

    // A batch: its first queued job's place, its last one's finish.
    const batch = await call("POST", "/v1/batches", {
      task: "summarize",
      params: { maxTokens: 40 },
      items: [{ text: "one" }, { text: "two" }, { text: "three" }],
    });
    const b = (await call("GET", `/v1/batches/${batch.body.id}`)).body.queue as QueueEstimate;
    expect(b.position).toBe(4);
    expect(b.ahead).toEqual({ jobs: 3, tokens: tokens(ids.b1!) + tokens(ids.b2!) + tokens(ids.b3!) });
    const jobsOfBatch = stack.producer.batches.jobPage(batch.body.id, ["queued"], -1, 10);
    // A batch's jobs are in line in their submission order (they share their queue time).
    const positions = [];
    for (const j of jobsOfBatch) positions.push(((await call("GET", `/v1/jobs/${j.id}`)).body.queue as QueueEstimate).position);
    expect(positions).toEqual([4, 5, 6]);
    const last = (await call("GET", `/v1/jobs/${jobsOfBatch.at(-1)!.id}`)).body.queue as QueueEstimate;
    expect(Math.abs(Date.parse(b.estimatedFinishAt!) - Date.parse(last.estimatedFinishAt!))).toBeLessThan(1_000);
    expect(Date.parse(b.estimatedStartAt!)).toBeLessThan(Date.parse(b.estimatedFinishAt!));
    await kv.delete(workerKey("eta-test"));
  });

  it("a job that left the queue has no queue estimate", async () => {
    await call("POST", `/v1/jobs/${ids.b1}/cancel`);
    expect((await call("GET", `/v1/jobs/${ids.b1}`)).body.queue).toBeNull();
    expect((await call("GET", `/v1/jobs/${ids.b2}`)).body.queue.position).toBe(1);
  });
});
