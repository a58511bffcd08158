import { jetstream } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { JobMessage } from "../../schema/job.ts";
import { subjects } from "../../schema/subjects.ts";
import { startStack, type TestStack } from "../helpers/stack.ts";

let stack: TestStack;
beforeAll(async () => {
  stack = await startStack({ env: { DOCKET_MAX_BATCH: "8", DOCKET_BATCH_WINDOW_MS: "400", DOCKET_CONTEXT_SIZE: "2048" } });
});
afterAll(() => stack?.stop());

describe("adaptive batcher in the real worker", () => {
  it("under a backlog it measures several batch sizes on the real engine within its ceiling", async () => {
    const nc = await stack.nats.connect("client");
    const js = jetstream(nc);
    const run = Date.now();
    const jobs: JobMessage[] = Array.from({ length: 80 }, (_, i) => ({
      v: 1,
      id: `adaptive_${run}_${i}`,
      lane: "batch",
      task: "extract",
      input: { text: `Document ${i}.` },
      params: {
        schema: { type: "object", properties: { a: { type: "string", minLength: 200, maxLength: 200 } }, required: ["a"] },
        maxTokens: 1500,
      },
      submittedAt: new Date().toISOString(),
    }));
    for (const j of jobs) await js.publish(subjects.job(j.lane, j.task), JSON.stringify(j), { msgID: j.id });
    const states = await Promise.all(jobs.map((j) => stack.waitFor(j.id, ["succeeded", "failed"], 120_000)));
    expect(states.every((s) => s === "succeeded")).toBe(true);

    const status = stack.worker?.status();
    const measured = Object.keys(status?.batcher?.measured ?? {}).map(Number);
    expect(status?.mode).toBe("adaptive");
    expect(measured.length).toBeGreaterThanOrEqual(2);
    expect(status?.batchSize).toBeGreaterThanOrEqual(1);
    expect(status?.batchSize).toBeLessThanOrEqual(8);
  });
});
