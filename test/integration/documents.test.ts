import { jetstream } from "@nats-io/jetstream";
import { Objm } from "@nats-io/obj";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { textSha256 } from "../../producer/job-message.ts";
import { createLogger } from "../../runtime/log.ts";
import type { BatchResultLine, BatchView } from "../../schema/batch.ts";
import { DOCS_BUCKET } from "../../schema/subjects.ts";
import { startWorker } from "../../worker/worker.ts";
import { pdfWith, pdfWithPages } from "../fixtures/documents.ts";
import { startStack, type TestStack } from "../helpers/stack.ts";

const ADMIN = "test-admin-key-0123456789abcdefghijklmnop";
const LEASE = "The tenant pays rent on the first day of each month. The landlord repairs the roof.";

let stack: TestStack;
let keyA: string;
let keyB: string;

beforeAll(async () => {
  // No worker at first: the deleted-document test needs its job queued when the document goes. Tests that
  // need jobs to run start it (worker()).
  stack = await startStack({
    worker: false,
    env: { DOCKET_API_KEY: ADMIN, DOCKET_MAX_TOKENS: "8", DOCKET_MAX_DELIVER: "2" },
  });
  keyA = (await call("POST", "/v1/keys", ADMIN, { name: "tenant a" })).body.key;
  keyB = (await call("POST", "/v1/keys", ADMIN, { name: "tenant b" })).body.key;
});
afterAll(() => stack?.stop());

let starting: Promise<void> | undefined;
function worker(): Promise<void> {
  starting ??= startWorker(stack.config, createLogger("test", stack.config.DOCKET_LOG_LEVEL)).then((w) => {
    stack.worker = w;
  });
  return starting;
}

async function call(method: string, path: string, key: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${stack.producer.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${key}`,
      ...(body !== undefined && !(body instanceof FormData) ? { "content-type": "application/json" } : {}),
      ...headers,
    },
    body: body === undefined ? undefined : body instanceof FormData ? body : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

async function upload(key: string, text = LEASE, title = "lease") {
  const r = await call("POST", "/v1/documents", key, { text, title });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body as { id: string; sha256: string; bytes: number };
}

/** Whether the docket-docs object store holds `name` (a deleted object keeps a tombstone info). */
async function stored(name: string): Promise<boolean> {
  const os = await new Objm(jetstream(stack.producer.nc)).open(DOCS_BUCKET);
  const info = await os.info(name);
  return info !== null && !info.deleted;
}

async function settle(batchId: string): Promise<{ batch: BatchView; lines: BatchResultLine[] }> {
  const res = await fetch(`${stack.producer.url}/v1/batches/${batchId}/results`, {
    headers: { authorization: `Bearer ${ADMIN}` },
  });
  const ids = (await res.text())
    .split("\n")
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as BatchResultLine).jobId);
  await Promise.all(ids.map((id) => stack.waitFor(id, ["succeeded", "failed", "cancelled"], 60_000)));
  const batch = (await call("GET", `/v1/batches/${batchId}`, ADMIN)).body as BatchView;
  const after = await fetch(`${stack.producer.url}/v1/batches/${batchId}/results`, {
    headers: { authorization: `Bearer ${ADMIN}` },
  });
  const lines = (await after.text())
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as BatchResultLine);
  return { batch, lines };
}

describe("documents: upload once, many jobs", () => {
  it("a job queued on a document that is then deleted fails with document_unavailable; the delete removes row and object", async () => {
    const doc = await upload(keyA);
    const job = await call("POST", "/v1/jobs", keyA, { task: "summarize", input: { documentId: doc.id } });
    expect(job.status).toBe(202);
    const deleted = await call("DELETE", `/v1/documents/${doc.id}`, keyA);
    expect(deleted).toEqual({ status: 200, body: { id: doc.id, object: "document", deleted: true } });
    expect(await stored(doc.id)).toBe(false);
    expect((await call("GET", `/v1/documents/${doc.id}`, keyA)).body.error.code).toBe("document_not_found");
    expect((await call("POST", "/v1/jobs", keyA, { task: "summarize", input: { documentId: doc.id } })).status).toBe(404);

    await worker();
    expect(await stack.waitFor(job.body.id, ["succeeded", "failed"], 60_000)).toBe("failed");
    expect(stack.producer.store.get(job.body.id)?.error?.code).toBe("document_unavailable");
  });

  it("a text document runs three jobs that name it; each carries its ref, id and sha256, and the object outlives them", async () => {
    await worker();
    const doc = await upload(keyA);
    expect(doc).toMatchObject({ id: expect.stringMatching(/^doc_[0-9a-z]{26}$/), bytes: Buffer.byteLength(LEASE) });
    expect(doc.sha256).toBe(textSha256(LEASE));
    const meta = await call("GET", `/v1/documents/${doc.id}`, keyA);
    expect(meta.body).toMatchObject({ id: doc.id, object: "document", title: "lease", filename: null });
    expect(meta.body.text).toBeUndefined();
    expect((await call("GET", `/v1/documents/${doc.id}?include=text`, keyA)).body.text).toBe(LEASE);

    const bodies = [
      { task: "summarize", input: { documentId: doc.id } },
      { task: "ask", input: { documentId: doc.id }, params: { question: "Who repairs the roof?" } },
      // A label is several tokens of the generated model: more than DOCKET_MAX_TOKENS=8.
      { task: "classify", input: { documentId: doc.id }, params: { labels: ["lease", "invoice"], maxTokens: 24 } },
    ];
    const ids: string[] = [];
    for (const b of bodies) {
      const r = await call("POST", "/v1/jobs", keyA, b);
      expect(r.status, JSON.stringify(r.body)).toBe(202);
      ids.push(r.body.id);
    }
    for (const id of ids)
      expect(await stack.waitFor(id, ["succeeded", "failed"], 60_000), JSON.stringify(stack.producer.store.get(id)?.error)).toBe(
        "succeeded",
      );
    for (const id of ids)
      expect(stack.producer.store.get(id)?.input).toEqual({
        ref: doc.id,
        documentId: doc.id,
        sha256: doc.sha256,
        title: "lease",
      });
    expect(await stored(doc.id)).toBe(true);

    // A job carrying the same text inline is grouped with them by content.
    const inline = await call("POST", "/v1/jobs", keyA, { task: "summarize", input: { text: LEASE } });
    expect(stack.producer.store.get(inline.body.id)?.input?.sha256).toBe(doc.sha256);
  });

  it("a PDF uploaded as multipart becomes a document whose extracted text jobs read", async () => {
    await worker();
    const form = new FormData();
    form.append(
      "file",
      new Blob([await pdfWith("The lessee shall pay rent monthly.")], { type: "application/pdf" }),
      "lease.pdf",
    );
    const r = await call("POST", "/v1/documents", keyA, form);
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(r.body).toMatchObject({ title: "lease.pdf", filename: "lease.pdf", mime: "application/pdf" });
    const text = (await call("GET", `/v1/documents/${r.body.id}?include=text`, keyA)).body.text as string;
    expect(text).toContain("The lessee shall pay rent monthly.");
    expect(r.body.sha256).toBe(textSha256(text));

    const job = await call("POST", "/v1/jobs", keyA, { task: "summarize", input: { documentId: r.body.id } });
    expect(await stack.waitFor(job.body.id, ["succeeded", "failed"], 60_000)).toBe("succeeded");

    const bad = new FormData();
    bad.append("file", new Blob(["x"], { type: "image/gif" }), "photo.gif");
    expect((await call("POST", "/v1/documents", keyA, bad)).body.error).toMatchObject({
      code: "unsupported_file_type",
      field: "file",
    });
  });

  it("a PDF over DOCKET_EXTRACT_MAX_PAGES uploaded as a document is refused 413 too_many_pages on field file", async () => {
    const form = new FormData();
    form.append("file", new Blob([await pdfWithPages(2_001)], { type: "application/pdf" }), "long.pdf");
    const r = await call("POST", "/v1/documents", keyA, form);
    expect(r.status).toBe(413);
    expect(r.body.error).toMatchObject({ code: "too_many_pages", field: "file" });
    expect(r.body.error.message).toMatch(/^long\.pdf: the PDF has 2001 pages/);
  });

  it("POST /v1/documents/:id/jobs runs the tasks as one batch that completes, like any batch", async () => {
    await worker();
    const doc = await upload(keyA);
    const r = await call("POST", `/v1/documents/${doc.id}/jobs`, keyA, {
      params: { maxTokens: 6 },
      tasks: [
        { task: "summarize", customId: "summary" },
        { task: "ask", params: { question: "Who pays rent?" }, customId: "payer" },
        { task: "classify", params: { labels: ["lease", "invoice"], maxTokens: 24 }, customId: "kind" },
      ],
    });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    expect(r.body).toMatchObject({ object: "batch", lane: "batch", task: "summarize", total: 3 });
    const { batch, lines } = await settle(r.body.id);
    expect(batch.state).toBe("completed");
    expect(batch.counts, JSON.stringify(lines.map((l) => l.error))).toMatchObject({ succeeded: 3, failed: 0 });
    expect(lines.map((l) => l.customId)).toEqual(["summary", "payer", "kind"]);
    const rows = lines.map((l) => stack.producer.store.get(l.jobId));
    for (const row of rows) expect(row?.input).toMatchObject({ ref: doc.id, documentId: doc.id, sha256: doc.sha256 });
    // The request's params apply to every task; a task's own override them.
    expect(rows.map((r) => r?.params.maxTokens)).toEqual([6, 6, 24]);
    expect(await stored(doc.id)).toBe(true);

    const body = { tasks: [{ task: "summarize" }], params: { maxTokens: 4 } };
    const once = await call("POST", `/v1/documents/${doc.id}/jobs`, keyA, body, { "idempotency-key": "doc-batch-1" });
    const twice = await call("POST", `/v1/documents/${doc.id}/jobs`, keyA, body, { "idempotency-key": "doc-batch-1" });
    expect([once.status, twice.status, twice.body.id]).toEqual([202, 200, once.body.id]);
    await settle(once.body.id);

    const invalid = await call("POST", `/v1/documents/${doc.id}/jobs`, keyA, {
      tasks: [{ task: "summarize" }, { task: "classify" }],
    });
    expect(invalid.status).toBe(400);
    expect(invalid.body.error).toMatchObject({ code: "validation_failed", field: "tasks.1.params.labels" });
  });

  it("POST /v1/batches with documentId runs items without text on the document", async () => {
    await worker();
    const doc = await upload(keyA);
    const r = await call("POST", "/v1/batches", keyA, {
      task: "summarize",
      documentId: doc.id,
      params: { maxTokens: 4 },
      items: [{ customId: "on-doc" }, { customId: "own-text", text: "Another contract." }],
    });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    const { batch, lines } = await settle(r.body.id);
    expect(batch.counts.succeeded).toBe(2);
    expect(stack.producer.store.get(lines[0]!.jobId)?.input).toMatchObject({ ref: doc.id, documentId: doc.id });
    expect(stack.producer.store.get(lines[1]!.jobId)?.input).toMatchObject({
      text: "Another contract.",
      sha256: textSha256("Another contract."),
    });
  });

  it("a job on a document that fails, or repeats an Idempotency-Key, leaves the document's object in place", async () => {
    await worker();
    const doc = await upload(keyA);
    const body = { task: "summarize", input: { documentId: doc.id }, deadline: new Date(Date.now() - 1000).toISOString() };
    const first = await call("POST", "/v1/jobs", keyA, body, { "idempotency-key": "doc-job-1" });
    const again = await call("POST", "/v1/jobs", keyA, body, { "idempotency-key": "doc-job-1" });
    expect([first.status, again.status]).toEqual([202, 200]);
    expect(again.body.id).toBe(first.body.id);
    expect(await stack.waitFor(first.body.id, ["succeeded", "failed"], 60_000)).toBe("failed");
    expect(stack.producer.store.get(first.body.id)?.error?.code).toBe("deadline_exceeded");
    expect(await stored(doc.id)).toBe(true);
    const later = await call("POST", "/v1/jobs", keyA, { task: "summarize", input: { documentId: doc.id } });
    expect(await stack.waitFor(later.body.id, ["succeeded", "failed"], 60_000)).toBe("succeeded");
  });

  it("another API key can neither see nor use the document: 404 document_not_found; the admin sees every document", async () => {
    const doc = await upload(keyA);
    for (const [method, path, body] of [
      ["GET", `/v1/documents/${doc.id}`, undefined],
      ["DELETE", `/v1/documents/${doc.id}`, undefined],
      ["POST", "/v1/jobs", { task: "summarize", input: { documentId: doc.id } }],
      ["POST", `/v1/documents/${doc.id}/jobs`, { tasks: [{ task: "summarize" }] }],
      ["POST", "/v1/batches", { task: "summarize", documentId: doc.id, items: [{}] }],
    ] as const) {
      const r = await call(method, path, keyB, body);
      expect(r.status, `${method} ${path}`).toBe(404);
      expect(r.body.error.code, `${method} ${path}`).toBe("document_not_found");
    }
    expect((await call("GET", "/v1/documents", keyB)).body).toEqual({ data: [], nextCursor: null, hasMore: false });
    expect((await call("GET", "/v1/documents", keyA)).body.data.map((d: { id: string }) => d.id)).toContain(doc.id);
    expect((await call("GET", `/v1/documents/${doc.id}`, ADMIN)).status).toBe(200);
    expect(await stored(doc.id)).toBe(true);
  });

  it("lists documents newest first in pages; refuses bad uploads, jobs with both text and documentId, a reused Idempotency-Key", async () => {
    const key = (await call("POST", "/v1/keys", ADMIN, { name: "pager" })).body.key as string;
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await upload(key, `Document ${i}.`, `d${i}`)).id);
    const first = await call("GET", "/v1/documents?limit=2", key);
    expect(first.body.data.map((d: { id: string }) => d.id)).toEqual([ids[2], ids[1]]);
    expect(first.body.hasMore).toBe(true);
    const second = await call("GET", `/v1/documents?limit=2&cursor=${first.body.nextCursor}`, key);
    expect(second.body).toMatchObject({ data: [{ id: ids[0] }], nextCursor: null, hasMore: false });

    expect((await call("POST", "/v1/documents", key, { text: "" })).body.error).toMatchObject({
      code: "validation_failed",
      field: "text",
    });
    const both = await call("POST", "/v1/jobs", key, { task: "summarize", input: { text: "x", documentId: ids[0] } });
    expect(both.body.error).toMatchObject({ code: "validation_failed", field: "input.documentId" });
    const unknown = await call("POST", "/v1/jobs", key, { task: "summarize", input: { documentId: "doc_nothing" } });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error).toMatchObject({ code: "document_not_found", field: "input.documentId" });

    const again = await call("POST", "/v1/documents", key, { text: "Same." }, { "idempotency-key": "doc-1" });
    const repeat = await call("POST", "/v1/documents", key, { text: "Same." }, { "idempotency-key": "doc-1" });
    expect([again.status, repeat.status]).toEqual([201, 200]);
    expect(repeat.body.id).toBe(again.body.id);
    const reused = await call("POST", "/v1/documents", key, { text: "Other." }, { "idempotency-key": "doc-1" });
    expect(reused.status).toBe(422);
    expect(reused.body.error.code).toBe("idempotency_key_reused");
  });
});
