import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BatchResultLine, BatchView } from "../../schema/batch.ts";
import { docxWith, pdfWith } from "../fixtures/documents.ts";
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
      batches: { batchId: string; counts: Record<string, number>; done: number; total: number }[];
    };
    const shown = snapshot.batches.find((b) => b.batchId === created.body.id);
    expect(shown).toMatchObject({ counts: view.counts, done: view.progress.done, total: view.progress.total });
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

  it("an unsupported file type is a 400 naming the file", async () => {
    const form = new FormData();
    form.set("task", "summarize");
    form.append("files", new Blob([new Uint8Array([0, 1, 2])], { type: "image/png" }), "scan.png");
    const r = await post("/v1/batches", form);
    expect(r.status).toBe(400);
    expect(r.body.error.message).toMatch(/scan\.png/);
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
