import { jetstream } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { JobMessage } from "../../schema/job.ts";
import { subjects } from "../../schema/subjects.ts";
import { startStack, type TestStack } from "../helpers/stack.ts";

let stack: TestStack;
beforeAll(async () => {
  // A fixed batch of 2 for the default and batch lanes; the context holds one more sequence for interactive.
  stack = await startStack({ env: { DOCKET_MAX_BATCH: "2", DOCKET_BATCH_SIZE: "2", DOCKET_CONTEXT_SIZE: "4096" } });
});
afterAll(() => stack?.stop());

const job = (id: string, lane: JobMessage["lane"], long: boolean): JobMessage => ({
  v: 1,
  id,
  lane,
  task: long ? "extract" : "summarize",
  input: { text: "A lease." },
  params: long
    ? {
        schema: { type: "object", properties: { a: { type: "string", minLength: 1500, maxLength: 1500 } }, required: ["a"] },
        maxTokens: 3000,
      }
    : { maxTokens: 4 },
  submittedAt: new Date().toISOString(),
});

describe("lanes", () => {
  it("an interactive job runs at once while a bulk batch fills every batch slot and more wait behind it", async () => {
    const nc = await stack.nats.connect("client");
    const js = jetstream(nc);
    const run = Date.now();
    const bulk = Array.from({ length: 6 }, (_, i) => job(`bulk_${run}_${i}`, "batch", true));
    for (const j of bulk) await js.publish(subjects.job(j.lane, j.task), JSON.stringify(j), { msgID: j.id });
    await stack.waitFor(bulk[0]!.id, ["running"]);

    const person = job(`person_${run}`, "interactive", false);
    await js.publish(subjects.job(person.lane, person.task), JSON.stringify(person), { msgID: person.id });
    expect(await stack.waitFor(person.id, ["succeeded", "failed"])).toBe("succeeded");

    const states = bulk.map((j) => stack.producer.store.get(j.id)?.state ?? "queued");
    // It did not wait for a batch slot to free up: no bulk job had finished yet.
    expect(states.filter((s) => s === "succeeded")).toEqual([]);
    // At most the two batch slots were busy: the rest of the bulk batch was still waiting.
    expect(states.filter((s) => s === "queued").length).toBeGreaterThanOrEqual(2);
    expect(states.filter((s) => s === "running").length).toBeLessThanOrEqual(2);
    await Promise.all(bulk.map((j) => stack.waitFor(j.id, ["succeeded", "failed"], 120_000)));
  });
});
