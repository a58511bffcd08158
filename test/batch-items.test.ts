import { describe, expect, it } from "vitest";
import { type ItemContext, jobsFromArray, jobsFromJsonl } from "../producer/batch-items.ts";
import { pipelined } from "../producer/pipeline.ts";

const ctx: ItemContext = {
  options: { task: "summarize", lane: "batch", params: { maxTokens: 8 } },
  batchId: "batch_x",
  submittedAt: "2026-01-01T00:00:00.000Z",
  maxDocument: 100,
};

const body = (text: string, chunkSize = 7) =>
  new ReadableStream<Uint8Array>({
    start(c) {
      const bytes = new TextEncoder().encode(text);
      for (let i = 0; i < bytes.length; i += chunkSize) c.enqueue(bytes.slice(i, i + chunkSize));
      c.close();
    },
  });

describe("batch items", () => {
  it("an item inherits the batch's task and params and may override them", async () => {
    const jobs = await jobsFromArray(ctx, [{ text: "a" }, { text: "b", task: "ask", params: { question: "q?" } }], 10);
    expect(jobs[0]).toMatchObject({ task: "summarize", params: { maxTokens: 8 }, batchId: "batch_x", lane: "batch" });
    expect(jobs[1]).toMatchObject({ task: "ask", params: { maxTokens: 8, question: "q?" } });
    expect(jobs[0]?.id).not.toBe(jobs[1]?.id);
  });

  it("JSONL lines split across stream chunks parse whole; bad lines are reported by line number", async () => {
    const text = `${JSON.stringify({ text: "first line, long enough to span chunks" })}\n[1,2\n\n${JSON.stringify({ title: "t" })}\n${JSON.stringify({ text: "last" })}`;
    const { jobs, rejected } = await jobsFromJsonl(ctx, body(text), 10);
    expect(jobs.map((j) => j.input.text)).toEqual(["first line, long enough to span chunks", "last"]);
    expect(rejected.map((r) => [r.line, r.code])).toEqual([
      [2, "invalid_json"],
      [4, "validation_failed"],
    ]);
  });

  it("a JSONL item above the document cap is rejected as payload_too_large", async () => {
    const { rejected } = await jobsFromJsonl(ctx, body(JSON.stringify({ text: "x".repeat(101) })), 10);
    expect(rejected[0]).toMatchObject({ line: 1, code: "payload_too_large", field: "text" });
  });

  it("more items than the batch limit is a 400", async () => {
    await expect(jobsFromArray(ctx, [{ text: "a" }, { text: "b" }], 1)).rejects.toMatchObject({ code: "validation_failed" });
    await expect(jobsFromJsonl(ctx, body('{"text":"a"}\n{"text":"b"}'), 1)).rejects.toMatchObject({ code: "validation_failed" });
  });
});

describe("pipelined", () => {
  it("never has more than the limit in flight and runs every item", async () => {
    let inFlight = 0;
    let most = 0;
    const done: number[] = [];
    await pipelined(
      Array.from({ length: 50 }, (_, i) => i),
      4,
      async (i) => {
        inFlight++;
        most = Math.max(most, inFlight);
        await new Promise((r) => setImmediate(r));
        inFlight--;
        done.push(i);
      },
    );
    expect(most).toBe(4);
    expect(done.sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i));
  });

  it("rejects with the first error after the started calls settle", async () => {
    let started = 0;
    await expect(
      pipelined([1, 2, 3, 4, 5], 2, async (i) => {
        started++;
        if (i === 2) throw new Error("boom");
      }),
    ).rejects.toThrow("boom");
    expect(started).toBeLessThan(5);
  });
});
