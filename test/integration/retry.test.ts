import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startStack, type TestStack } from "../helpers/stack.ts";

/** The deadline sweep runs only at start: a passed deadline is the worker's to find. */
let stack: TestStack;
beforeAll(async () => {
  stack = await startStack({ env: { DOCKET_DEADLINE_CHECK_MS: "600000" } });
});
afterAll(() => stack?.stop());

async function call(method: string, path: string, body?: unknown) {
  const res = await fetch(`${stack.producer.url}${path}`, {
    method,
    ...(body !== undefined ? { headers: { "content-type": "application/json" }, body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as Record<string, any> };
}

const eventsOf = (jobId: string) =>
  (
    stack.producer.database.sqlite
      .prepare("select kind, attempt, worker_id workerId, code from job_events where job_id = ? order by at, attempt")
      .all(jobId) as { kind: string; attempt: number; workerId: string; code: string | null }[]
  ).map((e) => [e.kind, e.attempt, e.workerId === "producer" ? "producer" : "worker", e.code]);

const party = { type: "object", properties: { party: { type: "string", maxLength: 40 } }, required: ["party"] };
const truncating = (text: string) => ({ task: "extract", input: { text }, params: { schema: party, maxTokens: 2 } });

describe("POST /v1/jobs/:id/retry", () => {
  it("a job the worker refused for its deadline runs again as attempt 2, without the deadline; job_events keeps both runs", async () => {
    const created = await call("POST", "/v1/jobs", {
      task: "chat",
      lane: "interactive",
      params: { maxTokens: 2, messages: [{ role: "user", content: "late" }] },
      deadline: new Date(Date.now() - 1_000).toISOString(),
    });
    await stack.waitFor(created.body.id, ["failed"]);
    expect(stack.producer.store.get(created.body.id)?.error?.code).toBe("deadline_exceeded");

    const retried = await call("POST", `/v1/jobs/${created.body.id}/retry`);
    expect(retried.status).toBe(202);
    expect(retried.body).toMatchObject({ id: created.body.id, attempts: 2, deadline: null });
    // Put back in line; the worker may have taken it by the time the answer is written.
    expect(["queued", "running", "succeeded"]).toContain(retried.body.state);
    await stack.waitFor(created.body.id, ["succeeded", "failed"]);
    const job = (await call("GET", `/v1/jobs/${created.body.id}`)).body;
    expect(job).toMatchObject({ state: "succeeded", attempts: 2, error: null });
    expect(job.result.usage.completionTokens).toBeGreaterThan(0);
    expect(eventsOf(created.body.id)).toEqual([
      ["failed", 1, "worker", "deadline_exceeded"],
      ["retried", 2, "producer", "deadline_exceeded"],
      ["started", 2, "worker", null],
      ["completed", 2, "worker", null],
    ]);
  });

  it("document_too_long retries chunked (overflow: chunk) and succeeds", async () => {
    // A little over the 1024-token context: two chunks, whose partial summaries the reduce step fits.
    const text = "lorem ipsum dolor sit amet ".repeat(220);
    const created = await call("POST", "/v1/jobs", { task: "summarize", input: { text }, params: { overflow: "fail" } });
    await stack.waitFor(created.body.id, ["failed"]);
    expect(stack.producer.store.get(created.body.id)?.error?.code).toBe("document_too_long");

    expect((await call("POST", `/v1/jobs/${created.body.id}/retry`)).status).toBe(202);
    expect(stack.producer.store.get(created.body.id)?.params.overflow).toBe("chunk");
    expect(await stack.waitFor(created.body.id, ["succeeded", "failed"], 60_000)).toBe("succeeded");
    expect(stack.producer.store.get(created.body.id)?.result?.chunks).toBeGreaterThanOrEqual(2);
  });

  it("output_truncated retries with maxTokens doubled, each retry a further attempt", async () => {
    const created = await call("POST", "/v1/jobs", truncating("Agreement between Acme Corporation and Bob."));
    await stack.waitFor(created.body.id, ["failed"]);
    expect(stack.producer.store.get(created.body.id)?.error?.code).toBe("output_truncated");

    await call("POST", `/v1/jobs/${created.body.id}/retry`);
    expect(stack.producer.store.get(created.body.id)).toMatchObject({ params: { maxTokens: 4 }, maxTokens: 4, firstAttempt: 2 });
    expect(await stack.waitFor(created.body.id, ["failed"])).toBe("failed");
    await call("POST", `/v1/jobs/${created.body.id}/retry`);
    expect(stack.producer.store.get(created.body.id)).toMatchObject({ params: { maxTokens: 8 }, firstAttempt: 3 });
    await stack.waitFor(created.body.id, ["succeeded", "failed"]);
    expect(eventsOf(created.body.id).map(([kind, attempt]) => `${kind}@${attempt}`)).toEqual([
      "started@1",
      "failed@1",
      "retried@2",
      "started@2",
      "failed@2",
      "retried@3",
      "started@3",
      expect.stringMatching(/^(completed|failed)@3$/),
    ]);
  });

  it("only failed and expired jobs can be retried: 409 for a succeeded job, 404 for an unknown one", async () => {
    const created = await call("POST", "/v1/jobs", { task: "summarize", input: { text: "A short lease." } });
    await stack.waitFor(created.body.id, ["succeeded"]);
    const again = await call("POST", `/v1/jobs/${created.body.id}/retry`);
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe("conflict");
    expect((await call("POST", "/v1/jobs/job_nope/retry")).status).toBe(404);
  });
});

describe("POST /v1/batches/:id/retry", () => {
  it("retries only the jobs with the error code asked for; the batch reopens and its counters stay right", async () => {
    const created = await call("POST", "/v1/batches", {
      task: "summarize",
      params: { maxTokens: 4 },
      items: [
        { text: "Fine.", customId: "ok" },
        { text: "Acme and Bob.", customId: "cut-1", ...truncating("Acme and Bob.") },
        { text: "Carol and Dan.", customId: "cut-2", ...truncating("Carol and Dan.") },
      ],
    });
    await stack.waitForBatch(created.body.id, ["completed"]);
    const ended = (await call("GET", `/v1/batches/${created.body.id}`)).body;
    expect(ended.counts).toMatchObject({ succeeded: 1, failed: 2 });

    const none = await call("POST", `/v1/batches/${created.body.id}/retry?code=document_too_long`);
    expect(none.status).toBe(409);

    const retried = await call("POST", `/v1/batches/${created.body.id}/retry?code=output_truncated`);
    expect(retried.status).toBe(202);
    expect(retried.body).toMatchObject({ id: created.body.id, retried: 2 });
    // Reopened: a new run of the batch (its two jobs are short: it may have ended again already).
    expect(["in_progress", "completed"]).toContain(retried.body.state);
    expect(stack.producer.batches.get(created.body.id)?.retries).toBe(1);

    await stack.waitForBatch(created.body.id, ["completed"]);
    const again = (await call("GET", `/v1/batches/${created.body.id}`)).body;
    expect(again.counts.queued + again.counts.running).toBe(0);
    expect(again.counts.succeeded + again.counts.failed + again.counts.cancelled).toBe(3);
    const rows = stack.producer.database.sqlite
      .prepare("select custom_id c, first_attempt a, max_tokens m from jobs where batch_id = ? order by batch_index")
      .all(created.body.id);
    expect(rows).toEqual([
      { c: "ok", a: 1, m: 4 },
      { c: "cut-1", a: 2, m: 4 },
      { c: "cut-2", a: 2, m: 4 },
    ]);
  });
});
