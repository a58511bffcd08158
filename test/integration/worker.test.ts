import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { JobChange } from "../../producer/recorder.ts";
import { createLogger } from "../../runtime/log.ts";
import type { JobMessage } from "../../schema/job.ts";
import { CONTROL_BUCKET, cancelKey, EVENTS_STREAM, subjects } from "../../schema/subjects.ts";
import { startWorker } from "../../worker/worker.ts";
import { startStack, type TestStack } from "../helpers/stack.ts";

let stack: TestStack;
beforeAll(async () => {
  // A 1 s ack wait: any generation longer than that survives only through in-progress acks.
  stack = await startStack({ env: { DOCKET_CONTEXT_SIZE: "4096", DOCKET_ACK_WAIT_SECONDS: "1" } });
});
afterAll(() => stack?.stop());

let n = 0;
/** A job whose grammar forces a long generation: the model cannot stop before 1,500 characters. */
function longJob(overrides: Partial<JobMessage> = {}): JobMessage {
  return {
    v: 1,
    id: `job_long_${Date.now()}_${n++}`,
    lane: "default",
    task: "extract",
    input: { text: "A contract." },
    params: {
      schema: { type: "object", properties: { a: { type: "string", minLength: 1500, maxLength: 1500 } }, required: ["a"] },
      maxTokens: 3000,
    },
    submittedAt: new Date().toISOString(),
    ...overrides,
  };
}

async function publish(job: JobMessage) {
  const nc = await stack.nats.connect("client");
  await jetstream(nc).publish(subjects.job(job.lane, job.task), JSON.stringify(job), { msgID: job.id });
}

async function setCancelFlag(jobId: string) {
  const nc = await stack.nats.connect("client");
  const kv = await new Kvm(jetstream(nc)).open(CONTROL_BUCKET);
  await kv.put(cancelKey(jobId), new Date().toISOString());
}

async function eventCount(jobId: string): Promise<Record<string, number>> {
  const nc = await stack.nats.connect("client");
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info(EVENTS_STREAM, { subjects_filter: subjects.jobEvents(jobId) });
  return Object.fromEntries(Object.entries(info.state.subjects ?? {}).map(([s, c]) => [s.split(".").pop() ?? s, c]));
}

function firstProgress(jobId: string): Promise<void> {
  return new Promise((resolve) => {
    const onProgress = (e: { jobId: string }) => {
      if (e.jobId !== jobId) return;
      stack.producer.recorder.off("progress", onProgress);
      resolve();
    };
    stack.producer.recorder.on("progress", onProgress);
  });
}

describe("worker", () => {
  it("a long generation outlives the ack wait through in-progress acks: one attempt, no redelivery", async () => {
    const job = longJob();
    await publish(job);
    await stack.waitFor(job.id, ["succeeded", "failed"], 60_000);
    const row = stack.producer.store.get(job.id);
    expect(row?.state).toBe("succeeded");
    expect(row?.result?.timings.runMs).toBeGreaterThan(1_000);
    expect(row?.attempts).toBe(1);
    // llama.cpp's grammar counts an invalid UTF-8 sequence from the random model as one character; it decodes to several U+FFFD.
    const json = row?.result?.json as { a: string } | undefined;
    expect(json?.a.length).toBeGreaterThanOrEqual(1500);
    expect((await eventCount(job.id)).started).toBe(1);
  });

  it("a cancel flag set before the job starts: it ends cancelled without running", async () => {
    const job = longJob();
    await setCancelFlag(job.id);
    await publish(job);
    expect(await stack.waitFor(job.id, ["cancelled", "succeeded", "failed"])).toBe("cancelled");
    const events = await eventCount(job.id);
    expect(events.started).toBeUndefined();
    expect(events.cancelled).toBe(1);
  });

  it("a cancel flag set while the job runs aborts the generation: it ends cancelled", async () => {
    const job = longJob();
    const progressed = firstProgress(job.id);
    await publish(job);
    await progressed;
    await setCancelFlag(job.id);
    expect(await stack.waitFor(job.id, ["cancelled", "succeeded", "failed"])).toBe("cancelled");
    const row = stack.producer.store.get(job.id);
    expect(row?.result).toBeNull();
    expect(await eventCount(job.id)).toMatchObject({ started: 1, cancelled: 1 });
  });

  it("a draining worker finishes in-flight jobs within the grace period", async () => {
    const log = createLogger("test", "silent");
    // A second worker; the stack's own worker is stopped first so this one takes the job.
    await stack.worker?.close(0);
    const second = await startWorker(stack.config, log);
    const job = longJob();
    const progressed = firstProgress(job.id);
    await publish(job);
    await progressed;
    await second.close(60_000);
    expect(stack.producer.store.get(job.id)?.state).toBe("succeeded");
    expect(stack.producer.store.get(job.id)?.attempts).toBe(1);
  });

  it("a worker whose grace period runs out returns the job to the queue; another worker completes it", async () => {
    const log = createLogger("test", "silent");
    const first = await startWorker(stack.config, log);
    const job = longJob();
    const progressed = firstProgress(job.id);
    await publish(job);
    await progressed;
    await first.close(0);
    const states: string[] = [];
    stack.producer.recorder.on("change", (c: JobChange) => c.jobId === job.id && states.push(c.state));
    const next = await startWorker(stack.config, log);
    try {
      expect(await stack.waitFor(job.id, ["succeeded", "failed"], 60_000)).toBe("succeeded");
      expect(stack.producer.store.get(job.id)?.attempts).toBe(2);
      expect((await eventCount(job.id)).completed).toBe(1);
    } finally {
      await next.close(0);
    }
  });
});
