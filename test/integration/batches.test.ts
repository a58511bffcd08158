import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BatchResultLine, BatchView } from "../../schema/batch.ts";
import { docxWith, pdfWith, scannedImage, scannedPdf } from "../fixtures/documents.ts";
import { startStack, type TestStack } from "../helpers/stack.ts";

let stack: TestStack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(() => stack?.stop());

async function post(path: string, body: BodyInit, headers: Record<string, string> = {}) {
  const res = await fetch(`${stack.producer.url}${path}`, { method: "POST", headers, body });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, any> };
}
const postJson = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  post(path, JSON.stringify(body), { "content-type": "application/json", ...headers });

async function getBatch(id: string): Promise<BatchView> {
  return (await (await fetch(`${stack.producer.url}/v1/batches/${id}`)).json()) as BatchView;
}

async function results(id: string): Promise<{ contentType: string | null; lines: BatchResultLine[] }> {
  const res = await fetch(`${stack.producer.url}/v1/batches/${id}/results`);
  const text = await res.text();
  return {
    contentType: res.headers.get("content-type"),
    lines: text
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l)),
  };
}

/** Waits until every job of the batch is terminal, through the recorder's pushed changes. */
async function settle(batchId: string): Promise<BatchView> {
  const { lines } = await results(batchId);
  await Promise.all(lines.map((l) => stack.waitFor(l.jobId, ["succeeded", "failed", "cancelled"], 60_000)));
  return getBatch(batchId);
}

describe("POST /v1/batches with JSON items", () => {
  it("runs every item and completes, with counts, progress and results in submission order", async () => {
    const created = await postJson("/v1/batches", {
      task: "summarize",
      params: { maxTokens: 8 },
      items: [
        { text: "First contract.", customId: "a" },
        { text: "Second contract.", customId: "b" },
        { text: "Which party?", customId: "c", task: "ask", params: { question: "Who pays?" } },
      ],
    });
    expect(created.status).toBe(202);
    expect(created.body).toMatchObject({ object: "batch", state: "in_progress", lane: "batch", total: 3 });
    expect(created.body.counts.queued + created.body.counts.running + created.body.counts.succeeded).toBe(3);

    const done = await settle(created.body.id);
    expect(done.state).toBe("completed");
    expect(done.counts).toEqual({ queued: 0, running: 0, succeeded: 3, failed: 0, cancelled: 0 });
    expect(done.progress).toEqual({ done: 3, total: 3 });
    expect(done.finishedAt).toBeTruthy();

    const { contentType, lines } = await results(created.body.id);
    expect(contentType).toMatch(/application\/x-ndjson/);
    expect(lines.map((l) => l.customId)).toEqual(["a", "b", "c"]);
    expect(lines.every((l) => l.state === "succeeded" && typeof (l.result as { text: string }).text === "string")).toBe(true);
    const ask = await (await fetch(`${stack.producer.url}/v1/jobs/${lines[2]?.jobId}`)).json();
    expect(ask.task).toBe("ask");
  });

  it("the dashboard shows a batch's progress as the batch API does", async () => {
    const created = await postJson("/v1/batches", {
      task: "summarize",
      params: { maxTokens: 4 },
      items: [{ text: "One." }, { text: "Two." }],
    });
    const view = await settle(created.body.id);
    const snapshot = (await (await fetch(`${stack.producer.url}/dashboard/snapshot`)).json()) as {
      batches: { id: string; counts: Record<string, number>; progress: { done: number; total: number } }[];
    };
    const shown = snapshot.batches.find((b) => b.id === created.body.id);
    expect(shown).toMatchObject({ counts: view.counts, progress: view.progress });
  });

  it("an invalid item is a 400 naming items.<i>.<field>, and nothing is written", async () => {
    const before = stack.producer.database.sqlite.prepare("SELECT count(*) AS n FROM jobs").get() as { n: number };
    const r = await postJson("/v1/batches", {
      task: "classify",
      params: { labels: ["a", "b"] },
      items: [{ text: "ok" }, { text: "" }],
    });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ code: "validation_failed", field: "items.1.text" });
    const after = stack.producer.database.sqlite.prepare("SELECT count(*) AS n FROM jobs").get() as { n: number };
    expect(after.n).toBe(before.n);
  });

  it("the same Idempotency-Key returns the same batch", async () => {
    const body = { task: "summarize", params: { maxTokens: 4 }, items: [{ text: "x" }] };
    const a = await postJson("/v1/batches", body, { "idempotency-key": "batch-key-1" });
    const b = await postJson("/v1/batches", body, { "idempotency-key": "batch-key-1" });
    expect(a.status).toBe(202);
    expect(b.status).toBe(200);
    expect(b.body.id).toBe(a.body.id);
    const count = stack.producer.database.sqlite.prepare("SELECT count(*) AS n FROM jobs WHERE batch_id = ?").get(a.body.id) as {
      n: number;
    };
    expect(count.n).toBe(1);
  });
});

describe("POST /v1/batches with a JSONL upload", () => {
  it("accepts the good lines and reports the bad ones by line number", async () => {
    const jsonl = [
      JSON.stringify({ text: "one", customId: "l1" }),
      "{not json",
      "",
      JSON.stringify({ customId: "no-text" }),
      JSON.stringify({ text: "two", customId: "l5" }),
    ].join("\n");
    const r = await post("/v1/batches?task=summarize&params=%7B%22maxTokens%22%3A4%7D", jsonl, {
      "content-type": "application/x-ndjson",
    });
    expect(r.status).toBe(202);
    expect(r.body.total).toBe(2);
    expect(r.body.rejected.count).toBe(2);
    expect(r.body.rejected.items).toEqual([
      expect.objectContaining({ line: 2, code: "invalid_json" }),
      expect.objectContaining({ line: 4, code: "validation_failed", field: "text" }),
    ]);
    await settle(r.body.id);
    const { lines } = await results(r.body.id);
    expect(lines.map((l) => l.customId)).toEqual(["l1", "l5"]);
  });

  it("an upload with no good line is a 400", async () => {
    const r = await post("/v1/batches?task=summarize", "{bad\n", { "content-type": "application/jsonl" });
    expect(r.status).toBe(400);
    expect(r.body.error.message).toMatch(/line 1/);
  });
});

describe("POST /v1/batches with multipart files", () => {
  it("extracts the text of txt, md, PDF and DOCX files; each file's name is its customId", async () => {
    const form = new FormData();
    form.set("task", "summarize");
    form.set("params", JSON.stringify({ maxTokens: 4 }));
    form.append("files", new Blob(["plain text lease"], { type: "text/plain" }), "a.txt");
    form.append("files", new Blob(["# Markdown lease"], { type: "text/markdown" }), "b.md");
    form.append("files", new Blob([await pdfWith("The lessee shall pay rent monthly.")], { type: "application/pdf" }), "c.pdf");
    form.append("files", new Blob([await docxWith("Tenancy agreement", "Rent is due monthly.")]), "d.docx");
    const r = await post("/v1/batches", form);
    expect(r.status).toBe(202);
    expect(r.body.total).toBe(4);
    const { lines } = await results(r.body.id);
    expect(lines.map((l) => l.customId)).toEqual(["a.txt", "b.md", "c.pdf", "d.docx"]);
    const inputs = lines.map(
      (l) => (stack.producer.store.get(l.jobId)?.input as { text?: string } | undefined)?.text?.trim() ?? "",
    );
    expect(inputs).toEqual([
      "plain text lease",
      "# Markdown lease",
      "The lessee shall pay rent monthly.",
      "Tenancy agreement\n\nRent is due monthly.",
    ]);
    expect((await settle(r.body.id)).state).toBe("completed");
  });

  it("an upload whose every file is unusable is refused with the first file's code, every file listed in error.rejected", async () => {
    const form = new FormData();
    form.set("task", "summarize");
    form.append("files", new Blob([new Uint8Array([0, 1, 2])], { type: "image/gif" }), "photo.gif");
    form.append("files", new Blob([]), "empty.txt");
    const r = await post("/v1/batches", form);
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ code: "unsupported_file_type", field: "files[photo.gif]" });
    expect(r.body.error.message).toMatch(/^none of the 2 files was accepted; photo\.gif: unsupported file type/);
    expect(r.body.error.rejected).toEqual({
      count: 2,
      items: [
        expect.objectContaining({ file: "photo.gif", code: "unsupported_file_type" }),
        expect.objectContaining({ file: "empty.txt", code: "empty_document" }),
      ],
    });
  });

  it("a folder with unusable files: each is rejected by name with its code, all at once, and the rest is accepted", async () => {
    const form = new FormData();
    form.set("task", "summarize");
    form.set("params", JSON.stringify({ maxTokens: 4 }));
    form.append("files", new Blob(["The tenant pays rent monthly."], { type: "text/plain" }), "lease.txt");
    form.append("files", new Blob([new TextEncoder().encode("PK not a zip")]), "corrupt.docx");
    form.append("files", new Blob([new TextEncoder().encode("%PDF-1.7 not a PDF")]), "corrupt.pdf");
    form.append("files", new Blob([]), "empty.txt");
    form.append("files", new Blob([new Uint8Array([0x63, 0x61, 0x66, 0xe9])]), "latin1.txt");
    form.append("files", new Blob([await scannedPdf(["SIGNED LEASE", "The landlord repairs the roof."])]), "scan.pdf");
    form.append("files", new Blob([await scannedImage("png", ["Referral letter", "Patient has asthma."])]), "fax.png");
    const r = await post("/v1/batches", form);
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    expect(r.body.total).toBe(3);
    expect(r.body.rejected).toEqual({
      count: 4,
      items: [
        expect.objectContaining({ file: "corrupt.docx", code: "unreadable_file", field: "files[corrupt.docx]" }),
        expect.objectContaining({ file: "corrupt.pdf", code: "unreadable_file" }),
        expect.objectContaining({ file: "empty.txt", code: "empty_document" }),
        expect.objectContaining({ file: "latin1.txt", code: "invalid_utf8" }),
      ],
    });
    for (const item of r.body.rejected.items) expect(item.message).toMatch(new RegExp(`^${item.file.replace(".", "\\.")}: `));

    // The scans were read by OCR; the job view and the results say which pages.
    const { lines } = await results(r.body.id);
    expect(lines.map((l) => [l.customId, l.ocrPages])).toEqual([
      ["lease.txt", undefined],
      ["scan.pdf", [1]],
      ["fax.png", [1]],
    ]);
    const scan = lines[1] as BatchResultLine;
    expect((stack.producer.store.get(scan.jobId)?.input as { text?: string } | undefined)?.text).toMatch(
      /landlord repairs the roof/,
    );
    const view = await (await fetch(`${stack.producer.url}/v1/jobs/${scan.jobId}`)).json();
    expect(view.ocrPages).toEqual([1]);
    expect((await settle(r.body.id)).state).toBe("completed");
  });

  it("params the task needs are checked before any file is read: classify without labels is one 400", async () => {
    const form = new FormData();
    form.set("task", "classify");
    form.append("files", new Blob(["a lease"], { type: "text/plain" }), "a.txt");
    form.append("files", new Blob(["an NDA"], { type: "text/plain" }), "b.txt");
    const r = await post("/v1/batches", form);
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ code: "validation_failed", field: "params.labels" });
  });
});

describe("POST /v1/batches with OCR off (DOCKET_OCR=false)", () => {
  let off: TestStack;
  beforeAll(async () => {
    off = await startStack({ worker: false, env: { DOCKET_OCR: "false" } });
  });
  afterAll(() => off?.stop());

  it("a scanned PDF is rejected scanned_document, saying that OCR is off; the other files are accepted", async () => {
    const form = new FormData();
    form.set("task", "summarize");
    form.append("files", new Blob(["The tenant pays rent monthly."], { type: "text/plain" }), "lease.txt");
    form.append("files", new Blob([await scannedPdf(["SIGNED"])], { type: "application/pdf" }), "signed.pdf");
    const res = await fetch(`${off.producer.url}/v1/batches`, { method: "POST", body: form });
    const body = (await res.json()) as Record<string, any>;
    expect(res.status).toBe(202);
    expect(body.total).toBe(1);
    expect(body.rejected.items).toEqual([
      {
        file: "signed.pdf",
        code: "scanned_document",
        message: "signed.pdf: this PDF has no text layer; OCR is off (DOCKET_OCR)",
        field: "files[signed.pdf]",
      },
    ]);
  });
});

describe("POST /v1/batches/:id/cancel", () => {
  it("cancels the queued jobs at once and the batch ends cancelled", async () => {
    // Long generations keep the worker's few sequences busy, so most of these jobs are still queued.
    const items = Array.from({ length: 30 }, (_, i) => ({ text: `doc ${i}`, customId: `c${i}` }));
    const created = await postJson("/v1/batches", { task: "summarize", params: { maxTokens: 64 }, items });
    const r = await post(`/v1/batches/${created.body.id}/cancel`, "");
    expect(r.status).toBe(202);
    expect(["cancelling", "cancelled"]).toContain(r.body.state);
    expect(r.body.counts.queued).toBe(0);
    expect(r.body.cancelRequestedAt).toBeTruthy();
    const done = await settle(created.body.id);
    expect(done.state).toBe("cancelled");
    expect(done.counts.cancelled).toBeGreaterThan(0);
    expect(done.counts.cancelled + done.counts.succeeded + done.counts.failed).toBe(30);
    const again = await post(`/v1/batches/${created.body.id}/cancel`, "");
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe("conflict");
  });

  it("an unknown batch is 404", async () => {
    const res = await fetch(`${stack.producer.url}/v1/batches/batch_nope`);
    expect(res.status).toBe(404);
  });
});
