import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { JobMessage } from "../../schema/job.ts";
import { EVENTS_STREAM, JOBS_STREAM, subjects } from "../../schema/subjects.ts";
import { startStack, type TestStack } from "../helpers/stack.ts";

let stack: TestStack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(() => stack?.stop());

describe("exactly once", () => {
  it("a job published twice with the same id by any NATS client is processed once", async () => {
    const nc = await stack.nats.connect("outside-client");
    const js = jetstream(nc);
    const job: JobMessage = {
      v: 1,
      id: "job_published_twice",
      lane: "batch",
      task: "summarize",
      input: { text: "Published by a client that is not the producer." },
      params: { maxTokens: 8 },
      customId: "doc-7",
      submittedAt: new Date().toISOString(),
    };
    const subject = subjects.job(job.lane, job.task);
    const first = await js.publish(subject, JSON.stringify(job), { msgID: job.id });
    const second = await js.publish(subject, JSON.stringify(job), { msgID: job.id });
    expect(first.duplicate).toBe(false);
    expect(second.duplicate).toBe(true);

    await stack.waitFor(job.id, ["succeeded", "failed"]);
    const row = stack.producer.store.get(job.id);
    expect(row).toMatchObject({ state: "succeeded", attempts: 1, customId: "doc-7", lane: "batch" });

    const jsm = await jetstreamManager(nc);
    const events = await jsm.streams.info(EVENTS_STREAM, { subjects_filter: subjects.jobEvents(job.id) });
    const finals = Object.entries(events.state.subjects ?? {}).filter(([s]) => !s.endsWith(".progress"));
    expect(Object.fromEntries(finals)).toEqual({
      [subjects.event(job.id, "started")]: 1,
      [subjects.event(job.id, "completed")]: 1,
    });
    // WorkQueue retention: the acked job is gone from DOCKET_JOBS.
    expect((await jsm.streams.info(JOBS_STREAM)).state.messages).toBe(0);
  });

  it("a job message that fails validation is failed with invalid_job, naming the field, and not retried", async () => {
    const nc = await stack.nats.connect("outside-client");
    const js = jetstream(nc);
    await js.publish(subjects.job("default", "summarize"), JSON.stringify({ v: 1, id: "job_bad_wire", lane: "default" }), {
      msgID: "job_bad_wire",
    });
    await stack.waitFor("job_bad_wire", ["failed"]);
    const row = stack.producer.store.get("job_bad_wire");
    expect(row?.error?.code).toBe("invalid_job");
    expect(row?.error?.message).toMatch(/task|input|submittedAt/);
    expect(row?.attempts).toBe(1);
  });
});
