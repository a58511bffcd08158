import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { batchFingerprint } from "../../producer/idempotency.ts";
import { newId } from "../../producer/ids.ts";
import { buildJobMessage } from "../../producer/job-message.ts";
import { startProducer } from "../../producer/producer.ts";
import { createLogger } from "../../runtime/log.ts";
import { startStack, type TestStack } from "../helpers/stack.ts";

/**
 * Issue 11: a producer that dies while writing a batch leaves it `validating` with part of its jobs, none
 * published. Start-up marks it failed; the client's retry of the same POST with the same Idempotency-Key
 * must then get its batch, not that empty failure.
 */
let stack: TestStack;
beforeAll(async () => {
  stack = await startStack({ worker: false });
});
afterAll(() => stack?.stop());

const KEY = "nightly-2026-01-01";
const body = { task: "summarize", items: Array.from({ length: 1200 }, (_, i) => ({ text: `lease ${i}`, customId: `doc-${i}` })) };

describe("a batch whose producer died while writing it", () => {
  it("retried with the same Idempotency-Key after the restart, it is created anew and runs, not handed back empty and failed", async () => {
    // What BatchIntake leaves when killed between two of its 500-job transactions: the batch row, 500 jobs.
    const interrupted = newId("batch");
    const createdAt = new Date().toISOString();
    const msgs = body.items.map((item) =>
      buildJobMessage({
        lane: "batch",
        task: "summarize",
        input: { text: item.text },
        params: {},
        batchId: interrupted,
        customId: item.customId,
        submittedAt: createdAt,
      }),
    );
    const fingerprint = await batchFingerprint({ task: "summarize", lane: "batch", params: {} }, msgs, []);
    const { batches } = stack.producer;
    batches.create({
      id: interrupted,
      lane: "batch",
      task: "summarize",
      params: {},
      total: msgs.length,
      idempotency: { key: KEY, fingerprint },
      createdAt,
    });
    batches.insertJobs(interrupted, 0, msgs.slice(0, 500));
    await stack.producer.close();
    stack.producer = await startProducer(stack.config, createLogger("test", "silent"));

    const res = await fetch(`${stack.producer.url}/v1/batches`, {
      method: "POST",
      headers: { "content-type": "application/json", "idempotency-key": KEY },
      body: JSON.stringify(body),
    });
    const batch = (await res.json()) as { id: string; state: string; total: number; error: unknown };
    expect(res.status, JSON.stringify(batch)).toBe(202);
    expect(batch).toMatchObject({ state: "in_progress", total: 1200, error: null });
    expect(batch.id).not.toBe(interrupted);
    const jobs = stack.producer.database.sqlite
      .prepare("select count(*) as n, count(published_at) as published from jobs where batch_id = ?")
      .get(batch.id) as { n: number; published: number };
    expect(jobs).toEqual({ n: 1200, published: 1200 });

    // A second retry gets the new batch; the interrupted one stays visible by id, failed, with no jobs.
    const again = await fetch(`${stack.producer.url}/v1/batches`, {
      method: "POST",
      headers: { "content-type": "application/json", "idempotency-key": KEY },
      body: JSON.stringify(body),
    });
    expect(again.status).toBe(200);
    expect(((await again.json()) as { id: string }).id).toBe(batch.id);
    const old = (await (await fetch(`${stack.producer.url}/v1/batches/${interrupted}`)).json()) as Record<string, unknown>;
    expect(old).toMatchObject({ state: "failed", total: 0, error: { code: "intake_interrupted" } });
  });
});
