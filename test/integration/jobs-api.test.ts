import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { textSha256 } from "../../producer/job-message.ts";
import type { JobView } from "../../schema/api.ts";
import { startStack, type TestStack } from "../helpers/stack.ts";

let stack: TestStack;
beforeAll(async () => {
  stack = await startStack({ env: { DOCKET_INLINE_LIMIT_BYTES: "512", DOCKET_MAX_DOCUMENT_BYTES: "64KiB" } });
});
afterAll(() => stack?.stop());

async function post(path: string, body: unknown) {
  const res = await fetch(`${stack.producer.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}
const get = async (path: string) => (await (await fetch(`${stack.producer.url}${path}`)).json()) as Record<string, any>;

function parseSse(text: string): { event: string; data: any }[] {
  return text
    .split("\n\n")
    .filter((b) => b.trim())
    .map((block) => {
      const field = (name: string) =>
        block
          .split("\n")
          .filter((l) => l.startsWith(`${name}:`))
          .map((l) => l.slice(name.length + 1).trim())
          .join("\n");
      return { event: field("event"), data: JSON.parse(field("data")) };
    });
}

describe("GET /v1/jobs", () => {
  it("lists newest first, filters by batch, task and state, and pages with a cursor", async () => {
    const batch = await post("/v1/batches", {
      task: "summarize",
      params: { maxTokens: 4 },
      items: Array.from({ length: 5 }, (_, i) => ({ text: `doc ${i}` })),
    });
    const single = await post("/v1/jobs", { task: "ask", input: { text: "x" }, params: { question: "y", maxTokens: 4 } });

    const page1 = await get(`/v1/jobs?batchId=${batch.body.id}&limit=2`);
    expect(page1.data).toHaveLength(2);
    expect(page1.hasMore).toBe(true);
    const page2 = await get(`/v1/jobs?batchId=${batch.body.id}&limit=2&cursor=${page1.nextCursor}`);
    const page3 = await get(`/v1/jobs?batchId=${batch.body.id}&limit=2&cursor=${page2.nextCursor}`);
    expect(page3.hasMore).toBe(false);
    const ids = [...page1.data, ...page2.data, ...page3.data].map((j: JobView) => j.id);
    expect(new Set(ids).size).toBe(5);
    expect(ids).toEqual([...ids].sort().reverse());

    const asks = await get("/v1/jobs?task=ask");
    expect(asks.data.map((j: JobView) => j.id)).toContain(single.body.id);
    expect(asks.data.every((j: JobView) => j.task === "ask")).toBe(true);

    await stack.waitFor(single.body.id, ["succeeded", "failed"]);
    const succeeded = await get("/v1/jobs?state=succeeded");
    expect(succeeded.data.map((j: JobView) => j.id)).toContain(single.body.id);

    const future = await get(`/v1/jobs?createdAfter=${new Date(Date.now() + 60_000).toISOString()}`);
    expect(future.data).toEqual([]);
  });

  it("a bad filter is a 400 naming it", async () => {
    const res = await fetch(`${stack.producer.url}/v1/jobs?state=done`);
    expect(res.status).toBe(400);
    expect(((await res.json()) as any).error.field).toBe("state");
  });
});

describe("GET /v1/jobs/:id/events", () => {
  it("streams the current state first, then each change, and ends when the job is terminal", async () => {
    const created = await post("/v1/jobs", { task: "summarize", input: { text: "Rent is due monthly." } });
    const res = await fetch(`${stack.producer.url}/v1/jobs/${created.body.id}/events`);
    expect(res.headers.get("content-type")).toMatch(/text\/event-stream/);
    const events = parseSse(await res.text());
    expect(events[0]?.event).toBe("state");
    const states = events.filter((e) => e.event === "state").map((e) => e.data.state);
    expect(states.at(-1)).toBe("succeeded");
    expect(states).toEqual([...new Set(states)]);
    for (const p of events.filter((e) => e.event === "progress")) expect(p.data.tokens).toBeGreaterThanOrEqual(0);
    expect(events.at(-1)?.data.result.text).toEqual(expect.any(String));
  });

  it("a finished job's stream is its final state, at once", async () => {
    const created = await post("/v1/jobs", { task: "summarize", input: { text: "x" }, params: { maxTokens: 2 } });
    await stack.waitFor(created.body.id, ["succeeded", "failed"]);
    const events = parseSse(await (await fetch(`${stack.producer.url}/v1/jobs/${created.body.id}/events`)).text());
    expect(events.map((e) => e.event)).toEqual(["state"]);
  });
});

describe("POST /v1/jobs/:id/cancel", () => {
  it("a finished job cannot be cancelled: 409 conflict", async () => {
    const created = await post("/v1/jobs", { task: "summarize", input: { text: "x" }, params: { maxTokens: 2 } });
    await stack.waitFor(created.body.id, ["succeeded", "failed"]);
    const r = await post(`/v1/jobs/${created.body.id}/cancel`, {});
    expect(r.status).toBe(409);
    expect(r.body.error.code).toBe("conflict");
  });

  it("an unknown job is 404", async () => {
    expect((await post("/v1/jobs/job_nope/cancel", {})).status).toBe(404);
  });
});

describe("large documents", () => {
  it("a document above the inline limit travels through the object store and the job succeeds", async () => {
    const text = "Rent is due. ".repeat(50); // 650 bytes > the 512-byte inline limit
    const created = await post("/v1/jobs", { task: "summarize", input: { text }, params: { maxTokens: 4 } });
    expect(created.status).toBe(202);
    const row = stack.producer.store.get(created.body.id);
    // The text is in the object store; its hash stays in the message.
    expect(row?.input).toEqual({ ref: created.body.id, sha256: textSha256(text) });
    await stack.waitFor(created.body.id, ["succeeded", "failed"]);
    expect(stack.producer.store.get(created.body.id)?.error).toBeNull();
    expect(stack.producer.store.get(created.body.id)?.state).toBe("succeeded");
  });

  it("a large document in a batch goes to the object store too", async () => {
    const big = "Clause. ".repeat(80);
    const created = await post("/v1/batches", {
      task: "summarize",
      params: { maxTokens: 4 },
      items: [{ text: big, customId: "big" }, { text: "small" }],
    });
    expect(created.status).toBe(202);
    const lines = (await (await fetch(`${stack.producer.url}/v1/batches/${created.body.id}/results`)).text())
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    expect(stack.producer.store.get(lines[0].jobId)?.input).toEqual({ ref: lines[0].jobId, sha256: textSha256(big) });
    expect(stack.producer.store.get(lines[1].jobId)?.input).toEqual({ text: "small", sha256: textSha256("small") });
    await Promise.all(lines.map((l) => stack.waitFor(l.jobId, ["succeeded", "failed"])));
    expect((await get(`/v1/batches/${created.body.id}`)).counts.succeeded).toBe(2);
  });

  it("a document above DOCKET_MAX_DOCUMENT_BYTES is 413 payload_too_large naming the limit", async () => {
    const r = await post("/v1/jobs", { task: "summarize", input: { text: "x".repeat(65 * 1024) } });
    expect(r.status).toBe(413);
    expect(r.body.error).toMatchObject({ code: "payload_too_large", field: "input.text" });
    expect(r.body.error.message).toMatch(/65536 bytes \(DOCKET_MAX_DOCUMENT_BYTES\)/);
  });
});
