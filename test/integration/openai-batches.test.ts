import OpenAI, { toFile } from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startStack, type TestStack } from "../helpers/stack.ts";

let stack: TestStack;
let idle: TestStack;
const clientFor = (s: TestStack) => new OpenAI({ apiKey: "not-needed", baseURL: `${s.producer.url}/openai/v1`, maxRetries: 0 });
beforeAll(async () => {
  [stack, idle] = await Promise.all([startStack(), startStack({ worker: false })]);
});
afterAll(async () => {
  await Promise.all([stack?.stop(), idle?.stop()]);
});

const request = (customId: string, body: Record<string, unknown>) =>
  JSON.stringify({ custom_id: customId, method: "POST", url: "/v1/chat/completions", body });
const chat = (content: string) => ({ model: "docket", messages: [{ role: "user", content }], max_tokens: 8, seed: 1 });

async function upload(client: OpenAI, lines: string[]) {
  return client.files.create({ file: await toFile(Buffer.from(`${lines.join("\n")}\n`), "requests.jsonl"), purpose: "batch" });
}

/** The HTTP API is the only view a client has: poll it, with a deadline. */
async function untilEnded(client: OpenAI, id: string, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const b = await client.batches.retrieve(id);
    if (["completed", "failed", "cancelled", "expired"].includes(b.status)) return b;
    if (Date.now() > deadline) throw new Error(`batch ${id} still ${b.status} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const jsonl = async (res: Response) =>
  (await res.text())
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as Record<string, any>);

describe("OpenAI Files + Batch API (official openai client)", () => {
  it("uploads a batch file, runs its requests as chat jobs and serves output and error files in OpenAI's format", async () => {
    const client = clientFor(stack);
    const lines = [
      request("req-1", chat("Summarize the lease.")),
      request("req-2", chat("Who pays the rent?")),
      request("bad-body", { model: "docket", messages: [] }),
      request("req-3", {
        ...chat("When does it end?"),
        messages: [
          { role: "system", content: "Be brief." },
          { role: "user", content: "When?" },
        ],
      }),
    ];
    const file = await upload(client, lines);
    expect(file).toMatchObject({ object: "file", purpose: "batch", filename: "requests.jsonl", status: "processed" });
    expect(file.id).toMatch(/^file-/);
    expect(file.bytes).toBe(Buffer.byteLength(`${lines.join("\n")}\n`));
    expect(await (await client.files.content(file.id)).text()).toBe(`${lines.join("\n")}\n`);
    expect((await client.files.retrieve(file.id)).bytes).toBe(file.bytes);

    const created = await client.batches.create({
      input_file_id: file.id,
      endpoint: "/v1/chat/completions",
      completion_window: "24h",
      metadata: { project: "leases" },
    });
    expect(created).toMatchObject({ object: "batch", input_file_id: file.id, endpoint: "/v1/chat/completions" });
    expect(created.id).toMatch(/^batch_/);
    expect(["in_progress", "completed"]).toContain(created.status);
    expect(created.request_counts).toMatchObject({ total: 4 });
    expect(created.metadata).toEqual({ project: "leases" });

    const done = await untilEnded(client, created.id);
    expect(done.status).toBe("completed");
    expect(done.request_counts).toEqual({ total: 4, completed: 3, failed: 1 });
    expect(done.completed_at).toBeGreaterThanOrEqual(done.created_at);
    expect(done.output_file_id).toMatch(/^file-/);
    expect(done.error_file_id).toMatch(/^file-/);

    const out = await jsonl(await client.files.content(done.output_file_id!));
    expect(out.map((l) => l.custom_id)).toEqual(["req-1", "req-2", "req-3"]);
    for (const l of out) {
      expect(l.error).toBeNull();
      expect(l.response.status_code).toBe(200);
      expect(l.response.body.object).toBe("chat.completion");
      expect(l.response.body.model).toBe("docket-demo-tiny");
      expect(typeof l.response.body.choices[0].message.content).toBe("string");
      expect(l.response.body.usage.completion_tokens).toBeLessThanOrEqual(8);
      const job = stack.producer.store.get(l.response.request_id);
      expect(job).toMatchObject({ batchId: created.id, customId: l.custom_id, lane: "batch", task: "chat", state: "succeeded" });
      expect(l.response.body.choices[0].message.content).toBe(job?.result?.text);
    }
    const errors = await jsonl(await client.files.content(done.error_file_id!));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({
      custom_id: "bad-body",
      response: { status_code: 400 },
      error: { code: "validation_failed" },
    });
    expect(errors[0]?.error.message).toMatch(/messages/);

    const outFile = await client.files.retrieve(done.output_file_id!);
    expect(outFile).toMatchObject({ purpose: "batch_output", filename: `${created.id}_output.jsonl` });
    const again = await (await client.files.content(done.output_file_id!)).text();
    expect(Buffer.byteLength(again)).toBe(outFile.bytes);
    expect((await client.batches.retrieve(created.id)).output_file_id).toBe(done.output_file_id);
  });

  it("an input file with a malformed line fails the batch with the line's error, and nothing runs", async () => {
    const client = clientFor(stack);
    const file = await upload(client, [request("a", chat("Hi")), "{not json", request("a", chat("dup"))]);
    const b = await client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    expect(b.status).toBe("failed");
    expect(b.failed_at).toBeGreaterThan(0);
    expect(b.errors?.data?.map((e) => [e.code, e.line])).toEqual([
      ["invalid_json_line", 2],
      ["duplicate_custom_id", 3],
    ]);
    expect(b.request_counts?.total).toBe(0);
    expect(b.output_file_id).toBeNull();
  });

  it("a batch for an unknown file or another endpoint is refused with the client's error", async () => {
    const client = clientFor(stack);
    await expect(
      client.batches.create({ input_file_id: "file-nope", endpoint: "/v1/chat/completions", completion_window: "24h" }),
    ).rejects.toMatchObject({ status: 404 });
    const file = await upload(client, [request("a", chat("Hi"))]);
    await expect(
      client.batches.create({ input_file_id: file.id, endpoint: "/v1/embeddings", completion_window: "24h" }),
    ).rejects.toMatchObject({ status: 400 });
  });

  it("cancel ends a batch whose requests are queued; they are reported in the error file", async () => {
    const client = clientFor(idle);
    const file = await upload(
      client,
      Array.from({ length: 5 }, (_, i) => request(`q-${i}`, chat(`Question ${i}`))),
    );
    const b = await client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    expect(b.status).toBe("in_progress");
    const cancelled = await client.batches.cancel(b.id);
    expect(["cancelling", "cancelled"]).toContain(cancelled.status);
    expect(cancelled.cancelling_at).toBeGreaterThan(0);
    const done = await untilEnded(client, b.id, 10_000);
    expect(done.status).toBe("cancelled");
    expect(done.request_counts).toEqual({ total: 5, completed: 0, failed: 5 });
    expect(done.output_file_id).toBeNull();
    const errors = await jsonl(await client.files.content(done.error_file_id!));
    expect(errors.map((e) => e.custom_id)).toEqual(["q-0", "q-1", "q-2", "q-3", "q-4"]);
    expect(errors.every((e) => e.error.code === "cancelled")).toBe(true);
  });

  it("batches and files list newest first with limit and after; a file can be deleted", async () => {
    const client = clientFor(idle);
    const files = [];
    for (let i = 0; i < 3; i++) files.push(await upload(client, [request(`l-${i}`, chat("Hi"))]));
    const batches = [];
    for (const f of files)
      batches.push(
        await client.batches.create({ input_file_id: f.id, endpoint: "/v1/chat/completions", completion_window: "24h" }),
      );
    const first = await client.batches.list({ limit: 2 });
    expect(first.data.map((b) => b.id)).toEqual([batches[2]!.id, batches[1]!.id]);
    expect(first.hasNextPage()).toBe(true);
    const all = [];
    for await (const b of client.batches.list({ limit: 2 })) all.push(b.id);
    expect(all.slice(0, 3)).toEqual(batches.map((b) => b.id).reverse());

    const listed = await client.files.list({ purpose: "batch", limit: 100 });
    expect(listed.data.map((f) => f.id)).toEqual(expect.arrayContaining(files.map((f) => f.id)));
    const deleted = await client.files.delete(files[0]!.id);
    expect(deleted).toMatchObject({ id: files[0]!.id, deleted: true });
    await expect(client.files.retrieve(files[0]!.id)).rejects.toMatchObject({ status: 404 });
  });
});
