import { on } from "node:events";
import OpenAI, { toFile } from "openai";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { webhookSecret } from "../../producer/webhooks/signature.ts";
import type { BatchResultLine } from "../../schema/batch.ts";
import type { WebhookDeliveryRow } from "../../schema/tables.ts";
import { startReceiver } from "../helpers/receiver.ts";
import { startStack, type TestStack } from "../helpers/stack.ts";

/** No worker: queued jobs stay queued, so only the producer's sweep can end them. */
let idle: TestStack;
/**
 * One sequence at a time, and a 2 s OpenAI completion window: a batch of one short request and many long ones
 * (the generated model runs 900 tokens in ~0.5 s here) has finished work and unfinished work when it ends.
 */
let busy: TestStack;
beforeAll(async () => {
  [idle, busy] = await Promise.all([
    startStack({ worker: false, env: { DOCKET_DEADLINE_CHECK_MS: "100" } }),
    startStack({
      env: {
        DOCKET_BATCH_SIZE: "1",
        DOCKET_DEADLINE_CHECK_MS: "100",
        DOCKET_OPENAI_BATCH_WINDOW_SECONDS: "2",
        DOCKET_WEBHOOK_ALLOW: "loopback",
        DOCKET_WEBHOOK_RETRY_BASE_MS: "100",
      },
    }),
  ]);
});
afterAll(async () => {
  await Promise.all([idle?.stop(), busy?.stop()]);
});

async function call(s: TestStack, method: string, path: string, body?: unknown) {
  const res = await fetch(`${s.producer.url}${path}`, {
    method,
    ...(body !== undefined ? { headers: { "content-type": "application/json" }, body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as Record<string, any> };
}

const jsonl = (text: string) =>
  text
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l));

async function results(s: TestStack, batchId: string): Promise<BatchResultLine[]> {
  return jsonl(await (await fetch(`${s.producer.url}/v1/batches/${batchId}/results`)).text());
}

/** A chat job of exactly `maxTokens` tokens (ignoreEos: the generated model may otherwise stop at any length). */
const chat = (content: string, maxTokens: number) => ({ messages: [{ role: "user", content }], maxTokens, ignoreEos: true });
const eventsOf = (s: TestStack, jobId: string) =>
  s.producer.database.sqlite
    .prepare("select kind, attempt, worker_id workerId, code from job_events where job_id = ? order by at, attempt")
    .all(jobId) as { kind: string; attempt: number; workerId: string; code: string | null }[];

describe("deadlines", () => {
  it("a queued job whose deadline passes fails deadline_exceeded through the producer's sweep, with no worker", async () => {
    const deadline = new Date(Date.now() + 400).toISOString();
    const created = await call(idle, "POST", "/v1/jobs", { task: "summarize", input: { text: "A lease." }, deadline });
    expect(created.status).toBe(202);
    expect(created.body).toMatchObject({ state: "queued", deadline });
    expect(await idle.waitFor(created.body.id, ["failed"], 10_000)).toBe("failed");
    const job = (await call(idle, "GET", `/v1/jobs/${created.body.id}`)).body;
    expect(job.error).toMatchObject({ code: "deadline_exceeded", retryable: false });
    expect(Date.parse(job.finishedAt)).toBeGreaterThanOrEqual(Date.parse(deadline));
    expect(eventsOf(idle, created.body.id)).toEqual([
      { kind: "failed", attempt: 1, workerId: "producer", code: "deadline_exceeded" },
    ]);
  });

  it("a deadline with an offset is kept in UTC, and a batch's deadline reaches every job: all fail, the batch completes", async () => {
    const deadline = new Date(Date.now() + 300);
    const withOffset = `${new Date(deadline.getTime() + 2 * 3_600_000).toISOString().slice(0, 23)}+02:00`;
    const created = await call(idle, "POST", "/v1/batches", {
      task: "summarize",
      deadline: withOffset,
      items: [{ text: "one" }, { text: "two" }, { text: "three" }],
    });
    expect(created.status).toBe(202);
    expect(created.body.deadline).toBe(deadline.toISOString());
    expect(await idle.waitForBatch(created.body.id, ["completed"], 10_000)).toBe("completed");
    const lines = await results(idle, created.body.id);
    expect(lines.map((l) => (l.error as { code: string }).code)).toEqual(Array(3).fill("deadline_exceeded"));
    expect((await call(idle, "GET", `/v1/batches/${created.body.id}`)).body.counts).toMatchObject({ failed: 3, queued: 0 });
  });

  it("a worker refuses a job whose deadline passed before it pulled it (deadline_exceeded, reported by the worker)", async () => {
    // The deadline has passed at submission: the worker pulls it within milliseconds, the sweep may race it; either
    // way the job never runs. The interactive lane is pulled at once.
    const res = await call(busy, "POST", "/v1/jobs", {
      task: "chat",
      lane: "interactive",
      params: chat("late", 4),
      deadline: new Date(Date.now() - 1_000).toISOString(),
    });
    await busy.waitFor(res.body.id, ["failed"], 10_000);
    const row = busy.producer.store.get(res.body.id);
    expect(row?.error?.code).toBe("deadline_exceeded");
    expect(row?.startedAt).toBeNull();
    expect(eventsOf(busy, res.body.id).map((e) => e.kind)).toEqual(["failed"]);
  });
});

describe("completion windows", () => {
  it("a batch still unfinished when its window ends expires: finished results stay, the rest are batch_expired, batch.expired fires", async () => {
    const receiver = await startReceiver();
    const secret = webhookSecret(busy.producer.database.db, undefined);
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), 30_000);
    const attempts = on(busy.producer.dispatcher, "attempt", { signal: ac.signal }) as AsyncIterable<[WebhookDeliveryRow]>;
    try {
      const created = await call(busy, "POST", "/v1/batches", {
        task: "chat",
        completionWindow: "2s",
        webhookUrl: `${receiver.url}/batch`,
        items: [
          { customId: "quick", params: chat("quick", 1) },
          ...Array.from({ length: 8 }, (_, i) => ({ customId: `long-${i}`, params: chat(`long ${i}`, 900) })),
        ],
      });
      expect(created.status).toBe(202);
      expect(Date.parse(created.body.expiresAt) - Date.parse(created.body.createdAt)).toBe(2_000);
      expect(await busy.waitForBatch(created.body.id, ["expired"], 20_000)).toBe("expired");

      const batch = (await call(busy, "GET", `/v1/batches/${created.body.id}`)).body;
      expect(batch).toMatchObject({ state: "expired", counts: { queued: 0, running: 0 } });
      expect(batch.expiredAt).not.toBeNull();
      expect(batch.counts.succeeded).toBeGreaterThanOrEqual(1);
      expect(batch.counts.cancelled).toBeGreaterThanOrEqual(1);
      expect(batch.counts.succeeded + batch.counts.cancelled).toBe(9);
      const lines = await results(busy, created.body.id);
      expect(lines[0]).toMatchObject({ customId: "quick", state: "succeeded" });
      for (const l of lines.filter((l) => l.state !== "succeeded"))
        expect(l).toMatchObject({ state: "cancelled", error: { code: "batch_expired" } });

      for await (const [row] of attempts) if (row.batchId === created.body.id && row.status === "delivered") break;
      const [request] = receiver.requests.filter((r) => r.body.includes(created.body.id));
      const headers = request!.headers as Record<string, string>;
      const payload = new Webhook(secret).verify(request!.body, headers) as Record<string, unknown>;
      expect(payload).toMatchObject({ type: "batch.expired", data: { id: created.body.id, state: "expired" } });
    } finally {
      clearTimeout(timer);
      await receiver.close();
    }
  });

  it("an OpenAI batch past its completion window is expired: output file with finished requests, error file with batch_expired", async () => {
    const client = new OpenAI({ apiKey: "unused", baseURL: `${busy.producer.url}/openai/v1`, maxRetries: 0 });
    const line = (id: string, max: number) =>
      JSON.stringify({
        custom_id: id,
        method: "POST",
        url: "/v1/chat/completions",
        // Greedy decoding: the generated model then runs these prompts to max_tokens but one (measured), ~3.5 s in all.
        body: { model: "docket", messages: [{ role: "user", content: id }], max_tokens: max, temperature: 0 },
      });
    const lines = [line("r-quick", 1), ...Array.from({ length: 8 }, (_, i) => line(`r-long-${i}`, 900))];
    const file = await client.files.create({
      file: await toFile(Buffer.from(`${lines.join("\n")}\n`), "requests.jsonl"),
      purpose: "batch",
    });
    const created = await client.batches.create({
      input_file_id: file.id,
      endpoint: "/v1/chat/completions",
      completion_window: "24h",
    });
    expect(created.expires_at! - created.created_at).toBe(2);
    await busy.waitForBatch(created.id, ["expired"], 20_000);

    const b = await client.batches.retrieve(created.id);
    expect(b.status).toBe("expired");
    expect(b.expired_at).toBeGreaterThanOrEqual(b.created_at);
    expect(b.request_counts?.total).toBe(9);
    expect(b.request_counts!.completed).toBeGreaterThanOrEqual(1);
    expect(b.request_counts!.completed + b.request_counts!.failed).toBe(9);
    const download = async (id: string) => jsonl(await (await client.files.content(id)).text());
    const output = await download(b.output_file_id!);
    expect(output[0]).toMatchObject({ custom_id: "r-quick", response: { status_code: 200 } });
    const errors = await download(b.error_file_id!);
    expect(errors).toHaveLength(b.request_counts!.failed);
    for (const e of errors) expect(e.error).toMatchObject({ code: "batch_expired" });
  });

  it("retrying one expired job reopens its batch with a new window; it runs as attempt 2 and the batch ends again with its own webhook", async () => {
    const created = await call(busy, "POST", "/v1/batches", {
      task: "chat",
      completionWindow: "1s",
      webhookUrl: "http://127.0.0.1:9/never-answers",
      // Long jobs first: the short ones behind them are still queued when the window ends, and one of them, retried,
      // runs within the new window.
      items: [
        ...Array.from({ length: 4 }, (_, i) => ({ customId: `long-${i}`, params: chat(`long ${i}`, 900) })),
        ...Array.from({ length: 2 }, (_, i) => ({ customId: `short-${i}`, params: chat(`short ${i}`, 1) })),
      ],
    });
    await busy.waitForBatch(created.body.id, ["expired"], 20_000);
    const expired = (await results(busy, created.body.id)).filter((l) => l.state === "cancelled");
    expect(expired.length).toBeGreaterThanOrEqual(1);
    const target = expired.at(-1)!;
    expect(target.customId).toBe("short-1");

    const retried = await call(busy, "POST", `/v1/jobs/${target.jobId}/retry`);
    expect(retried.status).toBe(202);
    expect(retried.body).toMatchObject({ attempts: 2, error: null });
    expect(["queued", "running", "succeeded"]).toContain(retried.body.state);
    // Reopened (the one-token job may already have ended it again): no longer expired, one job fewer cancelled.
    const reopened = (await call(busy, "GET", `/v1/batches/${created.body.id}`)).body;
    expect(reopened).toMatchObject({ expiredAt: null });
    expect(["in_progress", "completed"]).toContain(reopened.state);
    expect(reopened.counts.cancelled).toBe(expired.length - 1);

    expect(await busy.waitFor(target.jobId, ["succeeded"], 20_000)).toBe("succeeded");
    expect(await busy.waitForBatch(created.body.id, ["completed"], 10_000)).toBe("completed");
    const done = (await call(busy, "GET", `/v1/batches/${created.body.id}`)).body;
    expect(done.counts.cancelled).toBe(expired.length - 1);
    expect(busy.producer.store.get(target.jobId)).toMatchObject({ attempts: 2, firstAttempt: 2 });
    // Each run's end is its own event: expired, then (after the retry) completed.
    expect(busy.producer.outbox.forBatch(created.body.id).map((d) => d.type)).toEqual(["batch.expired", "batch.completed"]);
    expect(eventsOf(busy, target.jobId).map((e) => [e.kind, e.attempt, e.code])).toEqual([
      ["cancelled", 1, "batch_expired"],
      ["retried", 2, "batch_expired"],
      ["started", 2, null],
      ["completed", 2, null],
    ]);
  });
});
