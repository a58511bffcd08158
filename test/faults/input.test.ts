import { request } from "node:http";
import { jetstreamManager } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JOBS_STREAM } from "../../schema/subjects.ts";
import { startStack, type TestStack } from "../helpers/stack.ts";

/**
 * Issue 5, fault test 6: bad input. Every bad request gets a clear 4xx with a stable code, and nothing is
 * half-written: the jobs and batches tables and the DOCKET_JOBS stream are unchanged after it.
 * No worker: nothing consumes DOCKET_JOBS, so its message count is exact.
 */
let stack: TestStack;
beforeAll(async () => {
  stack = await startStack({
    worker: false,
    env: { DOCKET_MAX_DOCUMENT_BYTES: "8KiB", DOCKET_INLINE_LIMIT_BYTES: "4KiB", DOCKET_MAX_BATCH_BODY_BYTES: "128KiB" },
  });
});
afterAll(() => stack?.stop());

async function state() {
  const count = (table: string) =>
    (stack.producer.database.sqlite.prepare(`select count(*) as n from ${table}`).get() as { n: number }).n;
  const jsm = await jetstreamManager(stack.producer.nc);
  const info = await jsm.streams.info(JOBS_STREAM);
  return { jobs: count("jobs"), batches: count("batches"), messages: info.state.messages, lastSeq: info.state.last_seq };
}

/**
 * A chunked upload (no Content-Length) through node:http: the server answers 413 before the upload ends,
 * which fetch reports as a socket error, while a client reading the response (curl, node:http) sees it.
 */
function sendChunked(path: string, contentType: string, chunks: number, size: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const url = `${stack.producer.url}${path}`;
    // A fresh connection: the server closes one whose upload it stopped reading.
    const req = request(url, { method: "POST", agent: false, headers: { "content-type": contentType } }, (res) => {
      let body = "";
      res.on("error", reject);
      res.setEncoding("utf8");
      res.on("data", (d: string) => {
        body += d;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    // Writing after the server answered may fail (EPIPE, reset): the answer is what the test checks.
    req.on("error", (err) => (req.writableEnded ? undefined : reject(err)));
    let sent = 0;
    const pump = () => {
      while (sent < chunks) {
        sent++;
        if (!req.write(big(size))) return void req.once("drain", pump);
      }
      req.end();
    };
    pump();
  });
}

type Body = string | Uint8Array | ReadableStream<Uint8Array>;

async function send(path: string, body: Body, contentType = "application/json", headers: Record<string, string> = {}) {
  const res = await fetch(`${stack.producer.url}${path}`, {
    method: "POST",
    headers: { "content-type": contentType, ...headers },
    body,
    ...(body instanceof ReadableStream ? { duplex: "half" } : {}),
  } as RequestInit);
  return {
    status: res.status,
    body: (await res.json()) as { error: { code: string; message: string; field?: string } } & Record<string, any>,
  };
}

/** Sends a bad request and checks the answer and that nothing was written. */
async function refused(
  path: string,
  body: Body,
  want: { status: number; code: string; field?: string; message?: RegExp },
  contentType?: string,
  headers?: Record<string, string>,
) {
  const before = await state();
  const r = await send(path, body, contentType, headers);
  expect(r.status, JSON.stringify(r.body)).toBe(want.status);
  expect(r.body.error.code).toBe(want.code);
  if (want.field) expect(r.body.error.field).toBe(want.field);
  if (want.message) expect(r.body.error.message).toMatch(want.message);
  expect(await state()).toEqual(before);
  return r.body.error;
}

const bytes = (...parts: (string | number[])[]) =>
  Buffer.concat(parts.map((p) => (typeof p === "string" ? Buffer.from(p, "utf8") : Buffer.from(p))));
const INVALID = [0xff, 0xfe, 0xc3]; // 0xff never occurs in UTF-8; 0xc3 is a lead byte with no continuation
const big = (bytesLong: number) => "x".repeat(bytesLong);

describe("malformed and mistyped JSON", () => {
  it("malformed JSON is 400 invalid_json on every JSON route", async () => {
    for (const path of ["/v1/jobs", "/v1/batches", "/openai/v1/chat/completions", "/v1/keys"])
      await refused(path, '{"task": "summarize", "input": {', { status: 400, code: "invalid_json" });
    await refused("/v1/jobs", "", { status: 400, code: "invalid_json" });
  });

  it("wrong types are 400 validation_failed naming the field", async () => {
    const cases: [unknown, string][] = [
      [{ task: "summarize", input: { text: 42 } }, "input.text"],
      [{ task: "translate", input: { text: "a" } }, "task"],
      [{ task: "summarize", input: { text: "a" }, params: { maxTokens: "ten" } }, "params.maxTokens"],
      [{ task: "summarize", input: { text: "a" }, lane: ["batch"] }, "lane"],
      [["summarize"], ""],
    ];
    for (const [body, field] of cases) {
      const e = await refused("/v1/jobs", JSON.stringify(body), { status: 400, code: "validation_failed" });
      expect(e.field ?? "").toBe(field);
    }
    await refused("/v1/batches", JSON.stringify({ task: "summarize", items: "a,b" }), {
      status: 400,
      code: "validation_failed",
      field: "items",
    });
    await refused("/openai/v1/chat/completions", JSON.stringify({ model: "docket", messages: "hi" }), {
      status: 400,
      code: "validation_failed",
      field: "messages",
    });
  });

  it("an invalid JSON schema is 400 naming params.schema (job, batch params and batch items)", async () => {
    const schema = { type: "object", properties: { a: { type: "strnig" } } };
    await refused("/v1/jobs", JSON.stringify({ task: "extract", input: { text: "a" }, params: { schema } }), {
      status: 400,
      code: "validation_failed",
      field: "params.schema",
      message: /not a valid JSON schema/,
    });
    await refused("/v1/batches", JSON.stringify({ task: "extract", params: { schema }, items: [{ text: "a" }] }), {
      status: 400,
      code: "validation_failed",
      message: /params\.schema/,
    });
    await refused("/v1/batches", JSON.stringify({ task: "extract", items: [{ text: "a", params: { schema } }] }), {
      status: 400,
      code: "validation_failed",
      field: "items.0.params.schema",
    });
  });

  it("a JSON batch with one bad item is refused whole (400 naming the item), nothing written", async () => {
    await refused("/v1/batches", JSON.stringify({ task: "summarize", items: [{ text: "ok" }, { text: 7 }, { text: "ok" }] }), {
      status: 400,
      code: "validation_failed",
      field: "items.1.text",
    });
  });
});

describe("oversized input", () => {
  it("a document over DOCKET_MAX_DOCUMENT_BYTES is 413 payload_too_large naming the field (job and batch item)", async () => {
    await refused("/v1/jobs", JSON.stringify({ task: "summarize", input: { text: big(9 * 1024) } }), {
      status: 413,
      code: "payload_too_large",
      field: "input.text",
    });
    await refused("/v1/batches", JSON.stringify({ task: "summarize", items: [{ text: "ok" }, { text: big(9 * 1024) }] }), {
      status: 413,
      code: "payload_too_large",
      field: "items.1.text",
    });
  });

  it("a request body over the limit is 413 on every route, with or without Content-Length", async () => {
    const over = JSON.stringify({ task: "summarize", input: { text: big(80 * 1024) } }); // limit: 8 KiB + 64 KiB
    for (const path of ["/v1/jobs", "/openai/v1/chat/completions", "/v1/keys", "/v1/jobs/job_x/cancel", "/v1/nowhere"])
      await refused(path, over, { status: 413, code: "payload_too_large" });
    await refused("/v1/batches", JSON.stringify({ task: "summarize", items: [{ text: big(140 * 1024) }] }), {
      status: 413,
      code: "payload_too_large",
    });
    // Chunked: no Content-Length, the limit is enforced while reading.
    for (const [path, type] of [
      ["/v1/jobs", "application/json"],
      ["/v1/batches?task=summarize", "application/x-ndjson"],
    ]) {
      const before = await state();
      const r = await sendChunked(path!, type!, 60, 4096);
      expect(r.status, path).toBe(413);
      expect(JSON.parse(r.body).error.code).toBe("payload_too_large");
      expect(await state()).toEqual(before);
    }
  });
});

describe("invalid UTF-8", () => {
  it("bytes that are not UTF-8 in a JSON body are 400 invalid_utf8 (jobs, batches, chat)", async () => {
    await refused("/v1/jobs", bytes('{"task":"summarize","input":{"text":"rent ', INVALID, '"}}'), {
      status: 400,
      code: "invalid_utf8",
    });
    await refused("/v1/batches", bytes('{"task":"summarize","items":[{"text":"a ', INVALID, '"}]}'), {
      status: 400,
      code: "invalid_utf8",
    });
    await refused(
      "/openai/v1/chat/completions",
      bytes('{"model":"docket","messages":[{"role":"user","content":"hi ', INVALID, '"}]}'),
      { status: 400, code: "invalid_utf8" },
    );
  });

  it("a JSONL upload with a line that is not UTF-8 is refused whole: 400 invalid_utf8 naming the line", async () => {
    const upload = bytes('{"text":"fine"}\n', '{"text":"caf', [0xe9], '"}\n', '{"text":"fine too"}\n'); // Latin-1 é
    await refused(
      "/v1/batches?task=summarize",
      upload,
      { status: 400, code: "invalid_utf8", message: /line 2\b/ },
      "application/x-ndjson",
    );
  });

  it("valid multi-byte UTF-8 split across upload chunks is accepted intact", async () => {
    const text = "Vermieter zahlt Miete — 賃貸借契約 ✓";
    const line = Buffer.from(`${JSON.stringify({ text, customId: "utf8" })}\n`);
    const split = line.indexOf(Buffer.from("賃")) + 1; // inside a 3-byte sequence
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(line.subarray(0, split));
        c.enqueue(line.subarray(split));
        c.close();
      },
    });
    const r = await send("/v1/batches?task=summarize", body, "application/x-ndjson");
    expect(r.status).toBe(202);
    const row = stack.producer.database.sqlite.prepare("select input from jobs where batch_id = ?").get(r.body.id) as {
      input: string;
    };
    expect(JSON.parse(row.input).text).toBe(text);
  });
});

describe("JSONL with some bad lines", () => {
  it("good lines are accepted, bad ones reported by line number; exactly the good lines are written and published", async () => {
    const before = await state();
    const upload = [
      '{"text":"first lease"}',
      '{"text": "unterminated',
      '{"text":"second lease","customId":"b"}',
      '{"text": 12}',
      "",
      '{"text":"third lease"}',
    ].join("\n");
    const r = await send("/v1/batches?task=summarize", upload, "application/x-ndjson");
    expect(r.status).toBe(202);
    expect(r.body.total).toBe(3);
    expect(r.body.rejected).toEqual({
      count: 2,
      items: [
        { line: 2, code: "invalid_json", message: "line 2 is not valid JSON" },
        { line: 4, code: "validation_failed", field: "text", message: expect.stringMatching(/^line 4: text/) },
      ],
    });
    const after = await state();
    expect(after).toEqual({
      jobs: before.jobs + 3,
      batches: before.batches + 1,
      messages: before.messages + 3,
      lastSeq: before.lastSeq + 3,
    });
  });

  it("a JSONL upload with no good line is 400, and options that are not JSON are 400 naming params", async () => {
    await refused(
      "/v1/batches?task=summarize",
      '{"text": 1}\nnot json\n',
      { status: 400, code: "validation_failed" },
      "application/x-ndjson",
    );
    await refused(
      "/v1/batches?task=summarize&params=%7Bnope",
      '{"text":"a"}\n',
      { status: 400, code: "invalid_json", field: "params" },
      "application/x-ndjson",
    );
    await refused(
      "/v1/batches?task=bogus",
      '{"text":"a"}\n',
      { status: 400, code: "validation_failed", field: "task" },
      "application/x-ndjson",
    );
  });
});

describe("webhook URLs", () => {
  const schemes = ["file:///etc/passwd", "data:text/plain,hi", "javascript:alert(1)", "gopher://example.com/1"];

  it("a batch webhookUrl that is not http(s) is 400 validation_failed naming webhookUrl (JSON, JSONL, multipart)", async () => {
    for (const webhookUrl of schemes) {
      await refused("/v1/batches", JSON.stringify({ task: "summarize", items: [{ text: "a" }], webhookUrl }), {
        status: 400,
        code: "validation_failed",
        field: "webhookUrl",
      });
      await refused(
        `/v1/batches?task=summarize&webhookUrl=${encodeURIComponent(webhookUrl)}`,
        '{"text":"a"}\n',
        { status: 400, code: "validation_failed", field: "webhookUrl" },
        "application/x-ndjson",
      );
      const form = new FormData();
      form.set("task", "summarize");
      form.set("webhookUrl", webhookUrl);
      form.append("files", new Blob(["a lease"], { type: "text/plain" }), "lease.txt");
      const before = await state();
      const res = await fetch(`${stack.producer.url}/v1/batches`, { method: "POST", body: form });
      const body = (await res.json()) as { error: { code: string; field?: string } };
      expect(res.status, webhookUrl).toBe(400);
      expect(body.error).toMatchObject({ code: "validation_failed", field: "webhookUrl" });
      expect(await state()).toEqual(before);
    }
  });
});

describe("deeply nested and malformed bodies", () => {
  /** {"a":{"a":...}} `depth` levels deep, written as text: JSON.stringify of such a value overflows the stack. */
  const nested = (depth: number) => `${'{"a":'.repeat(depth)}{}${"}".repeat(depth)}`;

  it("a params.schema nested 8,000 levels deep is 400 validation_failed naming params.schema (job, batch, item)", async () => {
    const schema = nested(8000);
    await refused("/v1/jobs", `{"task":"extract","input":{"text":"a"},"params":{"schema":${schema}}}`, {
      status: 400,
      code: "validation_failed",
      field: "params.schema",
      message: /deeper/,
    });
    await refused("/v1/batches", `{"task":"extract","params":{"schema":${schema}},"items":[{"text":"a"}]}`, {
      status: 400,
      code: "validation_failed",
      field: "params.schema",
    });
    await refused("/v1/batches", `{"task":"extract","items":[{"text":"a","params":{"schema":${schema}}}]}`, {
      status: 400,
      code: "validation_failed",
      field: "items.0.params.schema",
    });
  });

  const part = (name: string, filename: string) =>
    `Content-Disposition: form-data; name="${name}"; filename="${filename}"\r\nContent-Type: text/plain\r\n\r\nhello\r\n`;
  const malformed: [string, string, string][] = [
    ["a boundary other than the header's", "multipart/form-data; boundary=abc", `--xyz\r\n${part("file", "a.jsonl")}--xyz--\r\n`],
    ["no boundary at all", "multipart/form-data", `--xyz\r\n${part("file", "a.jsonl")}--xyz--\r\n`],
    ["CR/LF in a file name", "multipart/form-data; boundary=xyz", `--xyz\r\n${part("file", "a\r\nb.jsonl")}--xyz--\r\n`],
  ];

  it.each(malformed)("multipart with %s is 400 invalid_multipart on /v1/batches and /openai/v1/files", async (_, type, body) => {
    await refused("/v1/batches", body, { status: 400, code: "invalid_multipart" }, type);
    const files = () => (stack.producer.database.sqlite.prepare("select count(*) as n from files").get() as { n: number }).n;
    const before = files();
    await refused("/openai/v1/files", body, { status: 400, code: "invalid_multipart" }, type);
    expect(files()).toBe(before);
  });
});

describe("Idempotency-Key", () => {
  const job = (text: string) => JSON.stringify({ task: "summarize", input: { text } });

  it("the same key with another job body is 422 idempotency_key_reused; the same body (any key order) returns the first job", async () => {
    const headers = { "idempotency-key": "reuse-job-1" };
    const first = await send("/v1/jobs", job("the first lease"), "application/json", headers);
    expect(first.status).toBe(202);
    const e = await refused(
      "/v1/jobs",
      job("another lease"),
      { status: 422, code: "idempotency_key_reused" },
      undefined,
      headers,
    );
    expect(e.message).toMatch(/Idempotency-Key/);
    const reordered = JSON.stringify({ input: { text: "the first lease" }, lane: "default", task: "summarize" });
    const again = await send("/v1/jobs", reordered, "application/json", headers);
    expect(again.status).toBe(200);
    expect(again.body.id).toBe(first.body.id);
  });

  it("the same key with another batch is 422 idempotency_key_reused (JSON, JSONL, multipart), nothing written", async () => {
    const headers = { "idempotency-key": "reuse-batch-1" };
    const first = await send("/v1/batches", JSON.stringify({ task: "summarize", items: [{ text: "a" }] }), undefined, headers);
    expect(first.status).toBe(202);
    const other = { status: 422, code: "idempotency_key_reused" };
    await refused("/v1/batches", JSON.stringify({ task: "summarize", items: [{ text: "b" }] }), other, undefined, headers);
    await refused("/v1/batches?task=summarize", '{"text":"b"}\n', other, "application/x-ndjson", headers);
    const form = new FormData();
    form.set("task", "summarize");
    form.append("files", new Blob(["b"], { type: "text/plain" }), "b.txt");
    const before = await state();
    const res = await fetch(`${stack.producer.url}/v1/batches`, { method: "POST", headers, body: form });
    expect(res.status).toBe(422);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("idempotency_key_reused");
    expect(await state()).toEqual(before);
    // The same items sent as JSONL are the same request: the first batch comes back.
    const same = await send("/v1/batches?task=summarize", '{"text":"a"}\n', "application/x-ndjson", headers);
    expect(same.status).toBe(200);
    expect(same.body.id).toBe(first.body.id);
  });

  it("a multipart batch retried with the same files (a new boundary) returns the first batch", async () => {
    const headers = { "idempotency-key": "reuse-batch-2" };
    const post = () => {
      const form = new FormData();
      form.set("task", "summarize");
      form.append("files", new Blob(["a lease"], { type: "text/plain" }), "lease.txt");
      return fetch(`${stack.producer.url}/v1/batches`, { method: "POST", headers, body: form });
    };
    const first = await post();
    expect(first.status).toBe(202);
    const again = await post();
    expect(again.status).toBe(200);
    expect(((await again.json()) as { id: string }).id).toBe(((await first.json()) as { id: string }).id);
  });
});

describe("chat messages", () => {
  const messages = [
    { role: "user", content: "What does the lease say?" },
    { role: "assistant", content: "It says rent is due monthly." },
  ];

  it("a chat whose last message is not the user's is 400 at submit on /v1/jobs and in batches, as on /openai", async () => {
    await refused("/v1/jobs", JSON.stringify({ task: "chat", params: { messages } }), {
      status: 400,
      code: "validation_failed",
      field: "params.messages",
      message: /last message must be from the user/,
    });
    await refused("/v1/batches", JSON.stringify({ task: "chat", items: [{ params: { messages } }] }), {
      status: 400,
      code: "validation_failed",
      field: "items.0.params.messages",
    });
    await refused("/openai/v1/chat/completions", JSON.stringify({ model: "docket", messages }), {
      status: 400,
      code: "validation_failed",
      field: "messages",
      message: /last message must be from the user/,
    });
  });
});
