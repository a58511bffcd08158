import { on } from "node:events";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { webhookSecret } from "../../producer/webhooks/signature.ts";
import type { WebhookDeliveryRow } from "../../schema/tables.ts";
import type { WebhookDeliveryView } from "../../schema/webhook.ts";
import { freePort } from "../../tools/nats-server.ts";
import { startReceiver } from "../helpers/receiver.ts";
import { startStack, type TestStack } from "../helpers/stack.ts";

let stack: TestStack;
let secret: string;
beforeAll(async () => {
  stack = await startStack({
    env: {
      DOCKET_WEBHOOK_ALLOW: "loopback",
      DOCKET_WEBHOOK_RETRY_BASE_MS: "100",
      DOCKET_WEBHOOK_RETRY_MAX_MS: "400",
      DOCKET_WEBHOOK_TIMEOUT_MS: "2000",
    },
  });
  secret = webhookSecret(stack.producer.database.db, undefined);
});
afterAll(() => stack?.stop());

async function submit(body: unknown) {
  const res = await fetch(`${stack.producer.url}/v1/jobs`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

async function deliveries(jobId: string) {
  const res = await fetch(`${stack.producer.url}/v1/jobs/${jobId}/webhooks`);
  return { status: res.status, body: (await res.json()) as { data: WebhookDeliveryView[] } & Record<string, any> };
}

/** Resolves with the job's delivery row once `done` holds for it (read first, then pushed by the dispatcher). */
async function attemptWhere(jobId: string, done: (row: WebhookDeliveryRow) => boolean, timeoutMs = 30_000) {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  const attempts = on(stack.producer.dispatcher, "attempt", { signal: ac.signal }) as AsyncIterableIterator<[WebhookDeliveryRow]>;
  try {
    const current = stack.producer.outbox.forJob(jobId)[0];
    if (current && done(current)) return current;
    for await (const [row] of attempts) if (row.jobId === jobId && done(row)) return row;
    throw new Error("dispatcher stopped");
  } finally {
    clearTimeout(timer);
    await attempts.return?.();
  }
}

describe("webhooks", () => {
  it("a receiver that is down for the first attempts gets the job.succeeded event exactly once, validly signed", async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}/hooks/docket`;
    const created = await submit({ task: "summarize", input: { text: "Rent is due monthly." }, webhookUrl: url });
    expect(created.status).toBe(202);
    expect(created.body.webhookUrl).toBe(url);
    const id = created.body.id as string;

    const failedTwice = await attemptWhere(id, (r) => r.attempts >= 2);
    expect(failedTwice.status).toBe("pending");
    expect(failedTwice.lastError).toMatch(/ECONNREFUSED/);

    const receiver = await startReceiver(port);
    try {
      const delivered = await attemptWhere(id, (r) => r.status === "delivered");
      expect(delivered.attempts).toBeGreaterThanOrEqual(3);
      expect(receiver.requests).toHaveLength(1);
      const [req] = receiver.requests;
      const payload = new Webhook(secret).verify(req!.body, req!.headers as Record<string, string>) as Record<string, any>;
      expect(req!.headers["webhook-id"]).toBe(delivered.id);
      expect(payload.type).toBe("job.succeeded");
      expect(payload.data).toMatchObject({ id, state: "succeeded", result: { text: expect.any(String) } });
      expect(payload.data.input).toBeUndefined();

      // A later look at the outbox sends nothing more.
      stack.producer.dispatcher.wake();
      const listed = await deliveries(id);
      expect(listed.status).toBe(200);
      expect(listed.body.data).toEqual([
        expect.objectContaining({
          id: delivered.id,
          type: "job.succeeded",
          jobId: id,
          url,
          status: "delivered",
          attempts: delivered.attempts,
          lastStatusCode: 200,
          nextAttemptAt: null,
          deliveredAt: expect.any(String),
        }),
      ]);
      expect(receiver.requests).toHaveLength(1);
    } finally {
      await receiver.close();
    }
  });

  it("a failed job sends job.failed; a 503 with Retry-After is retried", async () => {
    const receiver = await startReceiver();
    receiver.reply = (n) => (n === 0 ? { status: 503, headers: { "retry-after": "0" } } : { status: 204 });
    try {
      const text = "lorem ipsum dolor sit amet ".repeat(400);
      const created = await submit({
        task: "summarize",
        input: { text },
        params: { overflow: "fail" },
        webhookUrl: `${receiver.url}/failed`,
      });
      const delivered = await attemptWhere(created.body.id, (r) => r.status === "delivered");
      expect(delivered.attempts).toBe(2);
      expect(receiver.requests).toHaveLength(2);
      expect(receiver.requests[0]!.headers["webhook-id"]).toBe(receiver.requests[1]!.headers["webhook-id"]);
      const payload = new Webhook(secret).verify(
        receiver.requests[1]!.body,
        receiver.requests[1]!.headers as Record<string, string>,
      );
      expect(payload).toMatchObject({ type: "job.failed", data: { state: "failed", error: { code: "document_too_long" } } });
    } finally {
      await receiver.close();
    }
  });

  it.each([
    "http://10.0.0.5/hook",
    "http://192.168.1.20/hook",
    "http://172.20.0.1/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fe80::1]/hook",
    "http://0.0.0.0:8080/hook",
  ])("a callback to private address %s is refused at submit with webhook_url_forbidden", async (url) => {
    const r = await submit({ task: "summarize", input: { text: "x" }, webhookUrl: url });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ code: "webhook_url_forbidden", field: "webhookUrl" });
  });

  it("a webhookUrl that is not http(s) is a validation error", async () => {
    const r = await submit({ task: "summarize", input: { text: "x" }, webhookUrl: "file:///etc/passwd" });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ code: "validation_failed", field: "webhookUrl" });
  });

  it("the delivery listing of an unknown job is 404, of a job without webhook empty", async () => {
    expect((await deliveries("job_nope")).status).toBe(404);
    const created = await submit({ task: "summarize", input: { text: "x" } });
    await stack.waitFor(created.body.id, ["succeeded", "failed"]);
    expect((await deliveries(created.body.id)).body.data).toEqual([]);
  });

  it("a batch with a webhook URL gets one signed batch.completed event when its last job ends", async () => {
    const receiver = await startReceiver();
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), 30_000);
    // Listening before the submit: no attempt can be missed.
    const attempts = on(stack.producer.dispatcher, "attempt", { signal: ac.signal }) as AsyncIterable<[WebhookDeliveryRow]>;
    try {
      const res = await fetch(`${stack.producer.url}/v1/batches`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          task: "summarize",
          params: { maxTokens: 8 },
          items: [{ text: "one" }, { text: "two" }, { text: "three" }],
          webhookUrl: `${receiver.url}/batch`,
        }),
      });
      expect(res.status).toBe(202);
      const batch = (await res.json()) as { id: string };
      for await (const [row] of attempts) if (row.batchId === batch.id && row.status === "delivered") break;
      const batchRequests = receiver.requests.filter((r) => r.body.includes(batch.id));
      expect(batchRequests).toHaveLength(1);
      const payload = new Webhook(secret).verify(
        batchRequests[0]!.body,
        batchRequests[0]!.headers as Record<string, string>,
      ) as Record<string, any>;
      expect(payload.type).toBe("batch.completed");
      expect(payload.data).toMatchObject({ id: batch.id, state: "completed" });
    } finally {
      clearTimeout(timer);
      await receiver.close();
    }
  });

  it("a batch webhook URL pointing at a private address is refused at submit", async () => {
    const res = await fetch(`${stack.producer.url}/v1/batches`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ task: "summarize", items: [{ text: "x" }], webhookUrl: "http://169.254.169.254/latest" }),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("webhook_url_forbidden");
  });
});
