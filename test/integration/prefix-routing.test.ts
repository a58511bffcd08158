import { join } from "node:path";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../runtime/log.ts";
import { ensureRoutedConsumer } from "../../runtime/provision.ts";
import type { JobMessage } from "../../schema/job.ts";
import { JOBS_STREAM, routedConsumer, subjects, workerToken } from "../../schema/subjects.ts";
import { startWorker, type Worker } from "../../worker/worker.ts";
import { apiCall } from "../helpers/http.ts";
import { startStack, type TestStack, testConfig } from "../helpers/stack.ts";

// Issue 10, item 4: a document's later tasks go to the worker that holds its evaluated prefix, while it lives and
// has room; a job routed to a worker that died is taken over by another.
const DOC = "Lease agreement. The lessee shall pay the lessor rent of 1,200 euros on the first day of each month. ".repeat(12);

let stack: TestStack;
const workers: Worker[] = [];
beforeAll(async () => {
  stack = await startStack({ worker: false });
  for (const id of ["w-a", "w-b"])
    workers.push(
      await startWorker(
        testConfig({
          NATS_URL: stack.nats.url,
          DOCKET_DB: join(stack.dir, "docket.db"),
          DOCKET_WORKER_ID: id,
          DOCKET_BATCH_SIZE: "4",
          DOCKET_PREFIX_CACHE_DIR: join(stack.dir, `prefix-${id}`),
        }),
        createLogger("test", "silent"),
      ),
    );
}, 120_000);
afterAll(async () => {
  for (const w of workers) await w.close(0).catch(() => undefined);
  await stack?.stop();
});

const call = (method: string, path: string, body?: unknown) => apiCall(stack.producer.url, method, path, "", body);
const ask = (question: string) => ({ task: "ask", input: { text: DOC }, params: { question, maxTokens: 4 } });

async function run(body: unknown): Promise<string> {
  const r = await call("POST", "/v1/jobs", body);
  expect(r.status).toBe(202);
  expect(await stack.waitFor(r.body.id, ["succeeded"], 60_000)).toBe("succeeded");
  return stack.producer.store.get(r.body.id)!.workerId!;
}

/** Waits until the producer's view of the heartbeats says `worker` holds the document. */
async function heldBy(worker: string): Promise<void> {
  const sha = stack.producer.store.get((await call("GET", "/v1/jobs?limit=1")).body.data[0].id)!.input!.sha256!;
  for (let i = 0; i < 100; i++) {
    if (stack.producer.workerRegistry.holder(sha, null)?.id === worker) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${worker} never listed the document`);
}

describe("routing a document's tasks to the worker holding its prefix", () => {
  it("after one task, the next ones run on the same worker, through its docket-at consumer", async () => {
    const first = await run(ask("Who pays the rent?"));
    await heldBy(first);
    const ids = await Promise.all(
      ["When is it due?", "How much is it?", "Who is the lessor?"].map(
        async (q) => (await call("POST", "/v1/jobs", ask(q))).body.id,
      ),
    );
    for (const id of ids) expect(await stack.waitFor(id, ["succeeded"], 60_000)).toBe("succeeded");
    expect(ids.map((id) => stack.producer.store.get(id)!.workerId)).toEqual([first, first, first]);
    const jsm = await jetstreamManager(stack.producer.nc);
    const routed = await jsm.consumers.info(JOBS_STREAM, routedConsumer("default", workerToken(first)));
    expect(routed.delivered.consumer_seq).toBeGreaterThanOrEqual(3);
  });

  it("a job routed to a worker that died is taken over by another one", async () => {
    const [dead, other] = workers as [Worker, Worker];
    await dead.close(0);
    const job: JobMessage = {
      v: 1,
      id: "job_routed_to_the_dead",
      lane: "batch",
      task: "summarize",
      input: { text: DOC },
      params: { maxTokens: 4 },
      submittedAt: new Date().toISOString(),
    };
    // As the producer publishes it when it routes it just before the worker's end.
    const token = workerToken(dead.id);
    await ensureRoutedConsumer(stack.producer.nc, "batch", token, dead.status().servedModel);
    const publish = (m: JobMessage, to: string) =>
      jetstream(stack.producer.nc).publish(
        subjects.routedJob("batch", "summarize", undefined, undefined, to),
        JSON.stringify(m),
        {
          msgID: m.id,
        },
      );
    await publish(job, token);
    // A dead worker of another model: its routed jobs are not taken over by this model's workers.
    await ensureRoutedConsumer(stack.producer.nc, "batch", "w-ghost", "another-model");
    await publish({ ...job, id: "job_routed_to_another_model" }, "w-ghost");
    expect(await stack.waitFor(job.id, ["succeeded"], 60_000)).toBe("succeeded");
    expect(stack.producer.store.get(job.id)!.workerId).toBe(other.id);
    const jsm = await jetstreamManager(stack.producer.nc);
    expect((await jsm.consumers.info(JOBS_STREAM, routedConsumer("batch", "w-ghost"))).num_pending).toBe(1);
  });
});
