import { on } from "node:events";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Objm } from "@nats-io/obj";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newId } from "../../producer/ids.ts";
import { textSha256 } from "../../producer/job-message.ts";
import { type Producer, startProducer } from "../../producer/producer.ts";
import { createLogger } from "../../runtime/log.ts";
import type { JobMessage } from "../../schema/job.ts";
import { DOCS_BUCKET, JOBS_STREAM, subjects } from "../../schema/subjects.ts";
import type { WebhookDeliveryRow } from "../../schema/tables.ts";
import { startTestNats, type TestNats } from "../helpers/nats.ts";
import { type Receiver, startReceiver } from "../helpers/receiver.ts";
import { startStack, type TestStack, testConfig } from "../helpers/stack.ts";

/**
 * Issue 11: what NATS will not take must never be accepted and then left to block the queue. A job's message
 * is measured as it goes on the wire, against the server's max_payload (1 MiB by default): a document or
 * params that do not fit travel through the object store; a row that can never be published fails where
 * its owner sees it; a row that fails for a passing reason does not hold back the rows behind it.
 * No worker: nothing consumes DOCKET_JOBS, so what is published stays there to be read.
 */
let stack: TestStack;
let receiver: Receiver;
beforeAll(async () => {
  receiver = await startReceiver();
  stack = await startStack({
    worker: false,
    env: { DOCKET_WEBHOOK_ALLOW: "loopback", DOCKET_WEBHOOK_RETRY_BASE_MS: "100" },
  });
});
afterAll(async () => {
  await stack?.stop();
  await receiver?.close();
});

async function submit(body: unknown): Promise<{ status: number; body: Record<string, any> }> {
  const res = await fetch(`${stack.producer.url}/v1/jobs`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

/** The job message as JetStream stored it. */
async function stored(job: { id: string; lane: JobMessage["lane"]; task: JobMessage["task"] }) {
  const jsm = await jetstreamManager(stack.producer.nc);
  const m = await jsm.streams.getMessage(JOBS_STREAM, { last_by_subj: subjects.job(job.lane, job.task) });
  expect(m).not.toBeNull();
  return { bytes: m!.data.length, msg: m!.json<JobMessage>() };
}

/** A row as a producer without this check wrote it: a document inline whatever its size. */
function legacyRow(text: string, minutesAgo: number, webhookUrl?: string): string {
  const id = newId("job");
  const submittedAt = new Date(Date.now() - minutesAgo * 60_000).toISOString();
  stack.producer.store.insert(
    { v: 1, id, lane: "default", task: "summarize", input: { text }, params: {}, submittedAt },
    undefined,
    webhookUrl,
  );
  return id;
}

const maxPayload = () => stack.producer.nc.info!.max_payload;

describe("job messages and the server's max_payload", () => {
  it("a document of 200,000 U+0000 (1.2 MB once JSON-escaped) goes to the object store; its job is published", async () => {
    const text = "\u0000".repeat(200_000);
    expect(Buffer.byteLength(JSON.stringify(text))).toBeGreaterThan(maxPayload());
    const r = await submit({ task: "summarize", input: { text } });
    expect(r.status).toBe(202);
    const row = stack.producer.store.get(r.body.id)!;
    expect(row.publishedAt).not.toBeNull();
    expect(row.input).toEqual({ ref: r.body.id, sha256: textSha256(text) });
    const { bytes, msg } = await stored(row);
    expect(msg.id).toBe(row.id);
    expect(bytes).toBeLessThan(maxPayload());
    const docs = await new Objm(jetstream(stack.producer.nc)).open(DOCS_BUCKET);
    expect(new TextDecoder().decode((await docs.getBlob(r.body.id))!)).toBe(text);
  });

  it("a chat of 1.5 MB of messages is published with its params in the object store", async () => {
    const messages = Array.from({ length: 150 }, (_, i) => ({ role: i % 2 ? "assistant" : "user", content: "m".repeat(10_000) }));
    messages.push({ role: "user", content: "and now?" });
    const r = await submit({ task: "chat", lane: "interactive", params: { messages, maxTokens: 4 } });
    expect(r.status).toBe(202);
    const row = stack.producer.store.get(r.body.id)!;
    expect(row.publishedAt).not.toBeNull();
    expect(row.params.messages).toHaveLength(151);
    const { bytes, msg } = await stored(row);
    expect(bytes).toBeLessThan(maxPayload());
    expect(msg.params).toEqual({});
    expect(msg.paramsRef).toBeTruthy();
    const docs = await new Objm(jetstream(stack.producer.nc)).open(DOCS_BUCKET);
    expect(JSON.parse(new TextDecoder().decode((await docs.getBlob(msg.paramsRef!))!))).toEqual(row.params);
  });

  it("a row that can never be published fails (job_too_large, webhook sent), and the sweep goes on to the rows behind it", async () => {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), 30_000);
    const attempts = on(stack.producer.dispatcher, "attempt", { signal: ac.signal }) as AsyncIterable<[WebhookDeliveryRow]>;
    try {
      const tooLarge = legacyRow("x".repeat(1_100_000), 60, `${receiver.url}/too-large`);
      const behind = legacyRow("a normal lease", 59);
      await stack.producer.publisher.sweep();
      expect(stack.producer.store.get(behind)?.publishedAt).not.toBeNull();
      const failed = stack.producer.store.get(tooLarge)!;
      expect(failed).toMatchObject({ state: "failed", publishedAt: null, error: { code: "job_too_large", retryable: false } });
      for await (const [row] of attempts) if (row.jobId === tooLarge && row.status === "delivered") break;
      const hook = receiver.requests.find((r) => r.body.includes(tooLarge));
      expect(JSON.parse(hook!.body)).toMatchObject({
        type: "job.failed",
        data: { id: tooLarge, error: { code: "job_too_large" } },
      });
    } finally {
      clearTimeout(timer);
      ac.abort();
    }
  });

  it("a job submitted during a NATS outage is published within seconds of NATS coming back, even behind one that never can be", async () => {
    const { tooLarge, r } = await stack.nats.outage(async () => {
      const tooLarge = legacyRow("y".repeat(1_100_000), 10);
      const r = await submit({ task: "summarize", input: { text: "a lease signed during the outage" } });
      return { tooLarge, r };
    });
    expect(r.status).toBe(202);
    const back = Date.now();
    while (!stack.producer.store.get(r.body.id)?.publishedAt && Date.now() - back < 15_000) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(stack.producer.store.get(r.body.id)?.publishedAt, "published within 15 s of NATS coming back").not.toBeNull();
    expect(stack.producer.store.get(tooLarge)).toMatchObject({ state: "failed", error: { code: "job_too_large" } });
  }, 60_000);
});

describe("a row NATS refuses for a reason that may pass", () => {
  /** A NATS user that may do everything but publish interactive jobs: a deployment's mis-scoped permission. */
  const CONF = `
jetstream { store_dir: "./data/nats" }
authorization {
  users = [
    { user: producer, password: producer-secret, permissions: { publish: { allow: [">"], deny: ["docket.jobs.interactive.>"] }, subscribe: { allow: [">"] } } }
  ]
}
`;
  let dir: string;
  let nats: TestNats;
  let producer: Producer;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "docket-publish-"));
    const conf = join(dir, "nats.conf");
    await writeFile(conf, CONF);
    nats = await startTestNats({ conf });
    const config = testConfig({
      NATS_URL: nats.url,
      NATS_USER: "producer",
      NATS_PASSWORD: "producer-secret",
      DOCKET_DB: join(dir, "docket.db"),
    });
    producer = await startProducer(config, createLogger("test", "silent"));
  });
  afterAll(async () => {
    await producer?.close();
    await nats?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("stays queued for the next sweep and does not hold back the rows behind it", async () => {
    const row = (lane: JobMessage["lane"], minutesAgo: number) => {
      const id = newId("job");
      const submittedAt = new Date(Date.now() - minutesAgo * 60_000).toISOString();
      producer.store.insert({ v: 1, id, lane, task: "summarize", input: { text: "a lease" }, params: {}, submittedAt });
      return id;
    };
    const refused = row("interactive", 10);
    const behind = [row("default", 9), row("batch", 8)];
    await producer.publisher.sweep();
    for (const id of behind) expect(producer.store.get(id)?.publishedAt).not.toBeNull();
    expect(producer.store.get(refused)).toMatchObject({ state: "queued", publishedAt: null });
  });
});
