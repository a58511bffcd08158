import { jetstream } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newId } from "../../producer/ids.ts";
import type { JobMessage } from "../../schema/job.ts";
import { subjects } from "../../schema/subjects.ts";
import { submitJobs, tinyJob } from "../helpers/jobs.ts";
import { startStack, type TestStack } from "../helpers/stack.ts";

let stack: TestStack;
beforeAll(async () => {
  stack = await startStack({ env: { DOCKET_MAX_DELIVER: "3", DOCKET_CONTEXT_SIZE: "256" } });
});
afterAll(() => stack?.stop());

describe("a poison job: one that always fails with a retryable error", () => {
  it("ends failed after the maximum deliveries with a clear error, while other jobs keep flowing", async () => {
    // Its document is claimed to be in the object store but is not: document_unavailable, retryable.
    const poison: JobMessage = {
      v: 1,
      id: newId("job"),
      lane: "batch",
      task: "summarize",
      input: { ref: "no-such-document" },
      params: {},
      submittedAt: new Date().toISOString(),
    };
    await jetstream(stack.producer.nc).publish(subjects.job(poison.lane, poison.task), JSON.stringify(poison), {
      msgID: poison.id,
    });
    const others = await submitJobs(
      () => stack.producer.url,
      Array.from({ length: 20 }, (_, i) => tinyJob(i)),
    );
    for (const id of others) expect(await stack.waitFor(id, ["succeeded", "failed"])).toBe("succeeded");

    expect(await stack.waitFor(poison.id, ["succeeded", "failed"])).toBe("failed");
    const row = stack.producer.store.get(poison.id);
    expect(row?.attempts).toBe(3);
    expect(row?.error?.code).toBe("document_unavailable");
    expect(row?.error?.message).toMatch(/no-such-document.*gave up after 3 attempts/);
  });
});
