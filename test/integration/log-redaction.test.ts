import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { WebhookDeliveryRow } from "../../schema/tables.ts";
import { type DocketProcess, spawnDocket } from "../helpers/processes.ts";
import { type Receiver, startReceiver } from "../helpers/receiver.ts";
import { startStack, type TestStack } from "../helpers/stack.ts";

/** Planted in every place content can travel: document text, question, messages, schema descriptions. */
const SECRET = "PLANTED-SECRET-q7x3k9";
const lines: string[] = [];

let stack: TestStack;
let receiver: Receiver;
beforeAll(async () => {
  receiver = await startReceiver();
  stack = await startStack({
    env: { DOCKET_LOG_LEVEL: "trace", DOCKET_WEBHOOK_ALLOW: "loopback", DOCKET_WEBHOOK_RETRY_BASE_MS: "100" },
    logTo: { write: (line: string) => void lines.push(line) },
  });
});
afterAll(async () => {
  await stack?.stop();
  await receiver?.close();
});

async function post(path: string, body: unknown, contentType = "application/json") {
  const res = await fetch(`${stack.producer.url}${path}`, {
    method: "POST",
    headers: { "content-type": contentType },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

const doc = (n: number) => `Lease ${n}. The tenant ${SECRET} pays rent monthly to the landlord.`;

describe("logs carry ids and codes, never content", () => {
  it("job, batch (JSON and JSONL), chat, a failing job and a webhook leave no planted text in producer or worker logs", async () => {
    const delivered = new Promise<WebhookDeliveryRow>((resolve) =>
      stack.producer.dispatcher.on("attempt", (row: WebhookDeliveryRow) => row.status === "delivered" && resolve(row)),
    );
    const ask = await post("/v1/jobs", {
      task: "ask",
      input: { text: doc(1), title: `Title ${SECRET}` },
      params: { question: `Who is ${SECRET}?`, maxTokens: 6 },
      webhookUrl: `${receiver.url}/hook`,
    });
    const extract = await post("/v1/jobs", {
      task: "extract",
      input: { text: doc(2) },
      params: {
        maxTokens: 12,
        schema: { type: "object", description: SECRET, properties: { tenant: { type: "string", description: SECRET } } },
      },
    });
    const tooLong = await post("/v1/jobs", {
      task: "summarize",
      input: { text: doc(3).repeat(400) },
      params: { overflow: "fail", maxTokens: 4 },
    });
    const batch = await post("/v1/batches", {
      task: "summarize",
      params: { maxTokens: 4 },
      items: [{ text: doc(4) }, { text: doc(5) }],
    });
    const jsonl = await post(
      "/v1/batches?task=classify&params=%7B%22labels%22%3A%5B%22lease%22%2C%22other%22%5D%2C%22maxTokens%22%3A4%7D",
      [JSON.stringify({ text: doc(6) }), `{"text": "${SECRET} broken`, JSON.stringify({ text: doc(7), customId: "c7" })].join(
        "\n",
      ),
      "application/x-ndjson",
    );
    const chat = await fetch(`${stack.producer.url}/openai/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: "docket",
        max_tokens: 4,
        messages: [
          { role: "system", content: `System ${SECRET}` },
          { role: "user", content: `Hello ${SECRET}` },
        ],
      }),
    });
    const completion = (await chat.json()) as { id: string };
    expect([ask.status, extract.status, tooLong.status, batch.status, jsonl.status, chat.status]).toEqual([
      202, 202, 202, 202, 202, 200,
    ]);
    expect(jsonl.body.rejected.count).toBe(1);

    const chatJob = completion.id.replace(/^chatcmpl-/, "");
    expect(await stack.waitFor(ask.body.id, ["succeeded", "failed"], 30_000)).toBe("succeeded");
    await stack.waitFor(extract.body.id, ["succeeded", "failed"], 30_000);
    expect(await stack.waitFor(tooLong.body.id, ["succeeded", "failed"], 30_000)).toBe("failed");
    expect(stack.producer.store.get(tooLong.body.id)?.error?.code).toBe("document_too_long");
    for (const b of [batch, jsonl]) {
      const { data } = (await (await fetch(`${stack.producer.url}/v1/jobs?batchId=${b.body.id}`)).json()) as {
        data: { id: string }[];
      };
      for (const j of data) await stack.waitFor(j.id, ["succeeded", "failed"], 30_000);
    }
    expect((await delivered).jobId).toBe(ask.body.id);
    expect(receiver.requests[0]?.body).toContain(ask.body.id);

    const log = lines.join("");
    // The capture is real: it holds the ids of what was done, from producer and worker.
    for (const id of [ask.body.id, extract.body.id, tooLong.body.id, batch.body.id, jsonl.body.id, chatJob])
      expect(log).toContain(id);
    expect(log).toContain('"msg":"job completed"');
    expect(log).toContain("document_too_long");
    expect(log).toContain("webhook");
    expect(log).not.toContain(SECRET);
  });
});

describe("the engine's native output carries no schema or label text", () => {
  let bare: TestStack;
  let worker: DocketProcess;
  /** All the worker printed, stdout and stderr (the helper's output() keeps only the tail). */
  let printed = "";
  beforeAll(async () => {
    // A worker process of its own: what llama.cpp prints goes to that process's real stderr, captured here.
    bare = await startStack({ worker: false });
    worker = spawnDocket("worker/main.ts", {
      NATS_URL: bare.nats.url,
      DOCKET_GPU: "false",
      DOCKET_THREADS: "1",
      DOCKET_MAX_BATCH: "2",
      DOCKET_CONTEXT_SIZE: "1024",
      DOCKET_LOG_LEVEL: "trace",
    });
    for (const stream of [worker.child.stdout, worker.child.stderr]) stream?.on("data", (chunk: Buffer) => (printed += chunk));
    await worker.ready;
  });
  afterAll(async () => {
    await worker?.kill();
    await bare?.stop();
  });

  it("a schema whose grammar llama.cpp refuses (minItems: 100000, a planted enum value and key) fails invalid_params without printing them", async () => {
    const res = await fetch(`${bare.producer.url}/v1/jobs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        task: "extract",
        input: { text: doc(8) },
        params: {
          maxTokens: 8,
          schema: {
            type: "object",
            properties: { [`key-${SECRET}`]: { type: "array", minItems: 100_000, items: { enum: [`enum-${SECRET}`, "other"] } } },
          },
        },
      }),
    });
    const job = (await res.json()) as { id: string };
    expect(res.status).toBe(202);
    expect(await bare.waitFor(job.id, ["succeeded", "failed"], 30_000)).toBe("failed");
    expect(bare.producer.store.get(job.id)?.error?.code).toBe("invalid_params");
    await worker.kill();
    // The capture is real: the worker's log lines and llama.cpp's own stderr message are in it.
    expect(printed).toContain(job.id);
    expect(printed).toContain("error parsing grammar");
    expect(printed).not.toContain(SECRET);
  });
});
