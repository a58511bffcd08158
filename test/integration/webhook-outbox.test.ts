import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import pino from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type OpenDatabase, openDatabase } from "../../producer/db.ts";
import { Recorder } from "../../producer/recorder.ts";
import { JobStore } from "../../producer/stores/jobs.ts";
import { enqueueWebhook, Outbox } from "../../producer/stores/outbox.ts";
import { AddressPolicy } from "../../producer/webhooks/address.ts";
import { Dispatcher } from "../../producer/webhooks/dispatcher.ts";
import { webhookSecret } from "../../producer/webhooks/signature.ts";
import { createLogger } from "../../runtime/log.ts";
import type { EventMessage } from "../../schema/event.ts";
import type { WebhookDeliveryRow } from "../../schema/tables.ts";

let dir: string;
let database: OpenDatabase;
let outbox: Outbox;
const log = createLogger("test", "silent");

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "docket-outbox-"));
  database = openDatabase(join(dir, "docket.db"));
  outbox = new Outbox(database.db, { maxAttempts: 3, baseMs: 10, maxMs: 20 });
});
afterEach(async () => {
  database.close();
  await rm(dir, { recursive: true, force: true });
});

const result = {
  text: "summary",
  usage: { promptTokens: 10, completionTokens: 5 },
  timings: { queueMs: 1, runMs: 2, tokensPerSecond: 3 },
  model: "m",
};
const event = (kind: EventMessage["kind"], extra: Partial<EventMessage> = {}): EventMessage => ({
  v: 1,
  jobId: "job_w",
  kind,
  attempt: 1,
  workerId: "w1",
  at: new Date().toISOString(),
  ...extra,
});

function dispatcherFor(policy: AddressPolicy): Dispatcher {
  return new Dispatcher(outbox, policy, webhookSecret(database.db, undefined), log, { concurrency: 2, timeoutMs: 2_000 });
}

function nextAttempt(d: Dispatcher): Promise<WebhookDeliveryRow> {
  return new Promise((resolve) => d.once("attempt", resolve));
}

describe("webhook outbox (real SQLite file)", () => {
  it("a terminal event queues one delivery in the recorder's transaction; replays and later attempts add none", () => {
    const store = new JobStore(database.db);
    const recorder = new Recorder(database.db, log);
    store.insert(
      {
        v: 1,
        id: "job_w",
        lane: "default",
        task: "summarize",
        input: { text: "secret text" },
        params: {},
        submittedAt: "2026-01-01T00:00:00.000Z",
      },
      undefined,
      "https://example.com/hook",
    );
    recorder.apply(event("started"));
    expect(outbox.forJob("job_w")).toHaveLength(0);
    recorder.apply(event("completed", { result }));
    recorder.apply(event("completed", { result }));
    recorder.apply(event("failed", { attempt: 2, error: { code: "internal", message: "x", retryable: true } }));
    const rows = outbox.forJob("job_w");
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ type: "job.succeeded", status: "pending", attempts: 0, url: "https://example.com/hook" });
    const payload = JSON.parse(rows[0]!.payload);
    expect(payload).toMatchObject({ type: "job.succeeded", data: { id: "job_w", state: "succeeded", result } });
    expect(rows[0]!.payload).not.toContain("secret text");
  });

  it("enqueueWebhook queues a batch event once per batch", () => {
    const e = { type: "batch.completed" as const, url: "https://example.com/b", batchId: "batch_1", data: { id: "batch_1" } };
    expect(enqueueWebhook(database.db, e)).toBe(true);
    expect(database.db.transaction((tx) => enqueueWebhook(tx, e))).toBe(false);
    expect(outbox.forBatch("batch_1")).toHaveLength(1);
  });

  it.each([
    ["a host name resolving to loopback (DNS checked at delivery time)", "http://localhost:9/hook"],
    ["the metadata address", "http://169.254.169.254/latest/meta-data/"],
  ])("a delivery to %s is marked dead without a request", async (_, url) => {
    enqueueWebhook(database.db, { type: "job.failed", url, jobId: "job_x", data: {} });
    const d = dispatcherFor(new AddressPolicy());
    const attempt = nextAttempt(d);
    d.start();
    const row = await attempt;
    await d.stop();
    expect(row).toMatchObject({ status: "dead", attempts: 1, nextAttemptAt: null });
    expect(row.lastError).toMatch(/DOCKET_WEBHOOK_ALLOW/);
  });

  it.each(["file:///etc/passwd", "data:text/plain,hello", "javascript:alert(1)", "gopher://example.com/1", "not a url"])(
    "a delivery to %s (not http or https) is marked dead after one attempt, not retried for a day",
    async (url) => {
      enqueueWebhook(database.db, { type: "batch.completed", url, batchId: "batch_scheme", data: {} });
      const d = dispatcherFor(new AddressPolicy());
      const attempt = nextAttempt(d);
      d.start();
      const row = await attempt;
      await d.stop();
      expect(row).toMatchObject({ status: "dead", attempts: 1, nextAttemptAt: null });
      expect(row.lastError).toMatch(/http or https/);
    },
  );

  it("a receiver that never answers 2xx is marked dead after the last attempt", async () => {
    enqueueWebhook(database.db, { type: "job.failed", url: "http://127.0.0.1:9/nothing-listens", jobId: "job_y", data: {} });
    const d = dispatcherFor(new AddressPolicy("loopback"));
    const dead = new Promise<WebhookDeliveryRow>((resolve) =>
      d.on("attempt", (r: WebhookDeliveryRow) => r.status === "dead" && resolve(r)),
    );
    d.start();
    const row = await dead;
    await d.stop();
    expect(row.attempts).toBe(3);
    expect(row.lastError).toMatch(/ECONNREFUSED/);
  });

  it("a receiver that accepts but never answers is cut off at the timeout and retried later", async () => {
    const server = createServer(() => undefined).listen(0, "127.0.0.1");
    await once(server, "listening");
    const { port } = server.address() as AddressInfo;
    enqueueWebhook(database.db, { type: "job.succeeded", url: `http://127.0.0.1:${port}/slow`, jobId: "job_z", data: {} });
    const d = new Dispatcher(outbox, new AddressPolicy("loopback"), webhookSecret(database.db, undefined), log, {
      concurrency: 1,
      timeoutMs: 300,
    });
    const attempt = nextAttempt(d);
    d.start();
    const row = await attempt;
    await d.stop();
    server.closeAllConnections();
    server.close();
    expect(row).toMatchObject({ status: "pending", attempts: 1 });
    expect(row.lastError).toMatch(/no response within 300 ms/);
  });

  it("the signing secret is generated once, stored, and logged without its value", () => {
    const lines: string[] = [];
    const sink = pino(
      { level: "info" },
      new Writable({
        write: (chunk, _enc, done) => {
          lines.push(String(chunk));
          done();
        },
      }),
    );
    const secret = webhookSecret(database.db, undefined, sink);
    expect(webhookSecret(database.db, undefined, sink)).toBe(secret);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/generated/);
    expect(lines[0]).not.toContain(secret.slice(6));
    const configured = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    expect(webhookSecret(database.db, configured)).toBe(configured);
  });
});
