import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../runtime/log.ts";
import type { JobMessage } from "../../schema/job.ts";
import { EVENTS_STREAM, JOBS_STREAM, subjects, workerConsumer } from "../../schema/subjects.ts";
import { EventPublisher } from "../../worker/events.ts";
import { startWorker, type Worker } from "../../worker/worker.ts";
import { startStack, type TestStack } from "../helpers/stack.ts";

let stack: TestStack;
let worker: Worker | undefined;
beforeAll(async () => {
  stack = await startStack({ worker: false });
});
afterAll(async () => {
  await worker?.close(0);
  await stack?.stop();
});

describe("redelivery after the final event", () => {
  it("a job redelivered after its final event was stored (the worker died before acking) is acked, not run again", async () => {
    const nc = await stack.nats.connect("died-worker");
    const js = jetstream(nc);
    const jsm = await jetstreamManager(nc);
    const job: JobMessage = {
      v: 1,
      id: `job_final_${Date.now()}`,
      lane: "batch",
      task: "summarize",
      input: { text: "x" },
      params: { maxTokens: 4 },
      submittedAt: new Date().toISOString(),
    };
    await js.publish(subjects.job(job.lane, job.task), JSON.stringify(job), { msgID: job.id });

    // A worker takes the job, stores its final event, and dies before the ack: the message comes back.
    const m = await (await js.consumers.get(JOBS_STREAM, workerConsumer("batch"))).next({ expires: 5_000 });
    expect(m?.info.deliveryCount).toBe(1);
    const result = {
      text: "done",
      usage: { promptTokens: 1, completionTokens: 1 },
      timings: { queueMs: 0, runMs: 1, tokensPerSecond: 1 },
      model: "m",
    };
    await new EventPublisher(nc, "died-worker").publish(job, 1, "completed", { result });
    m?.nak();

    worker = await startWorker(stack.config, createLogger("test", "silent"));
    for (const deadline = Date.now() + 30_000; ; ) {
      const info = await jsm.streams.info(JOBS_STREAM);
      if (info.state.messages === 0) break;
      if (Date.now() > deadline) throw new Error("the redelivered job was never acked");
      await new Promise((r) => setTimeout(r, 100));
    }
    const events = await jsm.streams.info(EVENTS_STREAM, { subjects_filter: subjects.jobEvents(job.id) });
    expect(events.state.subjects).toEqual({ [subjects.event(job.id, "completed")]: 1 });
    expect(stack.producer.store.get(job.id)?.result?.text).toBe("done");
  });
});
