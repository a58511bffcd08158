import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ledger, storedFinalEvents, submitJobs, tinyJob } from "../helpers/jobs.ts";
import { startStack, type TestStack } from "../helpers/stack.ts";

const JOBS = 1000;
/** One job in ten runs the model; the rest carry a passed deadline and fail at once (deadline_exceeded):
 *  each still makes the full trip (publish, pull, final event, ack, record) at a pace the 2-core CI keeps. */
const RUN_EVERY = 10;

let stack: TestStack;
beforeAll(async () => {
  stack = await startStack({ env: { DOCKET_CONTEXT_SIZE: "256", DOCKET_MAX_BATCH: "4" } });
});
afterAll(() => stack?.stop());

describe("nats-server restarted in the middle of a 1,000-job batch", () => {
  it("producer and worker reconnect and every job ends exactly once", async () => {
    const bodies = Array.from({ length: JOBS }, (_, i) =>
      tinyJob(i, i % RUN_EVERY === 0 ? {} : { deadline: "2020-01-01T00:00:00.000Z" }),
    );
    let restarted: Promise<void> | undefined;
    const ids = await submitJobs(
      () => stack.producer.url,
      bodies,
      8,
      (n) => {
        // Restart while submissions continue and results are being recorded.
        if (n === 300) restarted = stack.nats.restart();
      },
    );
    await restarted;
    const deadline = Date.now() + 120_000;
    for (const id of ids) await stack.waitFor(id, ["succeeded", "failed"], Math.max(1, deadline - Date.now()));

    const { states, missing, duplicated } = ledger(stack.producer.database, ids);
    expect(missing).toEqual([]);
    expect(duplicated).toEqual([]);
    expect(states).toEqual({ succeeded: JOBS / RUN_EVERY, failed: JOBS - JOBS / RUN_EVERY });
    const stored = await storedFinalEvents(stack.producer.nc);
    expect(ids.filter((id) => stored.get(id) !== 1)).toEqual([]);
  }, 180_000);
});
