import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { scannedImage } from "../fixtures/documents.ts";
import { startStack, type TestStack } from "../helpers/stack.ts";

const BIN = join(import.meta.dirname, "..", "..", "bin", "docket.js");

let stack: TestStack;
let idle: TestStack;
let dir: string;
beforeAll(async () => {
  [stack, idle, dir] = await Promise.all([startStack(), startStack({ worker: false }), mkdtemp(join(tmpdir(), "docket-cli-"))]);
});
afterAll(async () => {
  await Promise.all([stack?.stop(), idle?.stop(), dir && rm(dir, { recursive: true, force: true })]);
});

/** Runs the real CLI as a child process (async, so the in-process stack keeps serving). */
function docket(args: string[], url = stack.producer.url): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { env: { ...process.env, DOCKET_URL: url, DOCKET_API_KEY: "" } },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe("docket submit / watch / results / status / cancel", () => {
  it("submits a folder of txt and md files as one batch, watches it to completion and writes one result per document", async () => {
    const docs = join(dir, "docs");
    await mkdir(join(docs, "sub"), { recursive: true });
    await writeFile(join(docs, "lease.txt"), "The tenant pays rent on the first of each month.");
    await writeFile(join(docs, "notes.md"), "# Notes\n\nThe landlord repairs the roof.");
    await writeFile(join(docs, "sub", "memo.txt"), "The lease ends in 2027.");
    await writeFile(join(docs, "photo.xcf"), "not a document");

    const submit = await docket(["submit", docs, "--params", '{"maxTokens":8}']);
    expect(submit.code, submit.stderr).toBe(0);
    const id = submit.stdout.trim();
    expect(id).toMatch(/^batch_\w+$/);
    expect(submit.stderr).toMatch(/upload 100%/);
    expect(submit.stderr).toContain(
      `skipped 1 file that docket does not read (.txt, .md, .pdf, .docx, .png, .jpg or .tiff):\n  ${join(docs, "photo.xcf")}\n`,
    );

    const watch = await docket(["watch", id, "--interval", "0.2"]);
    expect(watch.code, watch.stderr).toBe(0);
    expect(watch.stdout).toContain(`${id} completed 3/3 done`);
    expect(watch.stderr).toMatch(/batch 100% 3\/3 documents/);

    const out = join(dir, "results");
    const results = await docket(["results", id, "--dir", out]);
    expect(results.code, results.stderr).toBe(0);
    for (const name of ["lease.txt", "notes.md", join("sub", "memo.txt")]) {
      const r = JSON.parse(await readFile(join(out, `${name}.json`), "utf8"));
      expect(r).toMatchObject({ customId: name.split("\\").join("/"), state: "succeeded" });
      expect(typeof r.result.text).toBe("string");
    }

    const jsonl = join(dir, "results.jsonl");
    expect((await docket(["results", id, "--out", jsonl])).code).toBe(0);
    expect((await readFile(jsonl, "utf8")).trim().split("\n")).toHaveLength(3);

    const status = await docket(["status", id, "--json"]);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({
      id,
      state: "completed",
      task: "summarize",
      lane: "batch",
      counts: { succeeded: 3, failed: 0, queued: 0, running: 0 },
    });
    const job = stack.producer.store.list({ batchId: id, limit: 10 }).rows[0];
    expect(job?.params.maxTokens).toBe(8);
  });

  it("submits a JSONL file, cancels it, and watch exits 4 for the cancelled batch", async () => {
    const file = join(dir, "items.jsonl");
    await writeFile(
      file,
      `${JSON.stringify({ text: "one", customId: "a" })}\n${JSON.stringify({ text: "two", customId: "b" })}\n`,
    );
    const submit = await docket(["submit", file, "--task", "summarize"], idle.producer.url);
    expect(submit.code, submit.stderr).toBe(0);
    const id = submit.stdout.trim();
    expect(idle.producer.batches.get(id)?.total).toBe(2);

    const cancel = await docket(["cancel", id], idle.producer.url);
    expect(cancel.code, cancel.stderr).toBe(0);
    expect(cancel.stdout).toMatch(new RegExp(`^${id} (cancelling|cancelled) `));
    const watch = await docket(["watch", id, "--interval", "0.2"], idle.producer.url);
    expect(watch.code).toBe(4);
    expect(watch.stdout).toContain(`${id} cancelled`);
    const again = await docket(["cancel", id], idle.producer.url);
    expect(again.code).toBe(3);
    expect(again.stderr).toMatch(/already|only a batch in progress/);
  });

  it("retry runs a batch's failed jobs again (--code picks an error code) and a job id retries one job", async () => {
    const schema = { type: "object", properties: { party: { type: "string", maxLength: 40 } }, required: ["party"] };
    const file = join(dir, "to-retry.jsonl");
    await writeFile(
      file,
      [
        { text: "fine", customId: "ok", task: "summarize", params: { maxTokens: 2 } },
        { text: "Acme and Bob.", customId: "cut", params: { schema, maxTokens: 2 } },
      ]
        .map((l) => JSON.stringify(l))
        .join("\n"),
    );
    const submit = await docket(["submit", file, "--task", "extract", "--params", JSON.stringify({ schema })]);
    expect(submit.code, submit.stderr).toBe(0);
    const id = submit.stdout.trim();
    await stack.waitForBatch(id, ["completed"]);
    expect(stack.producer.batches.get(id)).toMatchObject({ succeeded: 1, failed: 1 });

    const none = await docket(["retry", id, "--code", "document_too_long"]);
    expect(none.code).toBe(3);
    expect(none.stderr).toMatch(/no failed or expired jobs with error code document_too_long/);
    const retried = await docket(["retry", id, "--code", "output_truncated"]);
    expect(retried.code, retried.stderr).toBe(0);
    expect(retried.stderr).toContain("retried 1 jobs");
    expect(retried.stdout).toMatch(new RegExp(`^${id} (in_progress [12]|completed 2)/2 done`));
    await stack.waitForBatch(id, ["completed"]);

    const late = await fetch(`${stack.producer.url}/v1/jobs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        task: "chat",
        params: { maxTokens: 1, messages: [{ role: "user", content: "late" }] },
        deadline: new Date(Date.now() - 1_000).toISOString(),
      }),
    });
    const jobId = ((await late.json()) as { id: string }).id;
    await stack.waitFor(jobId, ["failed"]);
    const one = await docket(["retry", jobId]);
    expect(one.code, one.stderr).toBe(0);
    expect(one.stdout).toMatch(new RegExp(`^${jobId} (queued|running|succeeded) \\(attempt 2\\)`));
    expect(await stack.waitFor(jobId, ["succeeded"])).toBe("succeeded");
    expect((await docket(["retry", jobId])).code).toBe(3);
    expect((await docket(["retry", "job_nope"])).code).toBe(5);
  });

  it("exit codes: 5 for an unknown batch, 3 for an unreachable server, 2 for a usage error", async () => {
    const unknown = await docket(["status", "batch_nope"]);
    expect(unknown.code).toBe(5);
    expect(unknown.stderr).toMatch(/no batch with id batch_nope/);

    const down = await docket(["status", "batch_nope"], "http://127.0.0.1:1");
    expect(down.code).toBe(3);
    expect(down.stderr).toMatch(/cannot reach http:\/\/127\.0\.0\.1:1/);

    expect((await docket(["submit"])).code).toBe(2);
    expect((await docket(["status"])).code).toBe(2);
    expect((await docket(["submit", join(dir, "missing-folder")])).code).toBe(2);
  });

  it("documents add uploads a file once; documents tasks and submit --document run tasks on it as batches; list and delete", async () => {
    const file = join(dir, "contract.md");
    await writeFile(file, "# Contract\n\nThe tenant pays rent monthly.");
    const add = await docket(["documents", "add", file, "--title", "the contract"]);
    expect(add.code, add.stderr).toBe(0);
    const docId = add.stdout.trim();
    expect(docId).toMatch(/^doc_\w+$/);

    const tasks = await docket([
      "documents",
      "tasks",
      docId,
      "--task",
      "summarize",
      "--task",
      "ask",
      "--params",
      '{"maxTokens":6,"question":"Who pays?"}',
    ]);
    expect(tasks.code, tasks.stderr).toBe(0);
    const batchId = tasks.stdout.trim();
    const watch = await docket(["watch", batchId, "--interval", "0.2"]);
    expect(watch.code, watch.stderr).toBe(0);
    expect(watch.stdout).toContain(`${batchId} completed 2/2 done (succeeded 2`);

    const one = await docket(["submit", "--document", docId, "--task", "summarize", "--params", '{"maxTokens":4}']);
    expect(one.code, one.stderr).toBe(0);
    expect(stack.producer.batches.get(one.stdout.trim())?.total).toBe(1);

    const list = await docket(["documents", "list"]);
    expect(list.stdout).toMatch(new RegExp(`^${docId} .* the contract$`, "m"));
    expect((await docket(["documents", "delete", docId])).code).toBe(0);
    expect((await docket(["documents", "tasks", docId, "--task", "summarize"])).code).toBe(5);
    expect((await docket(["documents", "add", join(dir, "missing.txt")])).code).toBe(2);
    expect((await docket(["submit", "--document", docId, file])).code).toBe(2);
  });
});

describe("docket submit forgives a folder and checks before uploading", () => {
  let locked: TestStack;
  beforeAll(async () => {
    locked = await startStack({ worker: false, env: { DOCKET_API_KEY: "the-admin-key-of-this-test" } });
  });
  afterAll(() => locked?.stop());

  it("lists skipped files by name and each file the server refused with its code; the rest is one batch", async () => {
    const docs = join(dir, "mixed");
    await mkdir(join(docs, "old"), { recursive: true });
    await writeFile(join(docs, "lease.txt"), "The tenant pays rent on the first of each month.");
    await writeFile(join(docs, "corrupt.pdf"), "%PDF-1.7 this is not a PDF");
    await writeFile(join(docs, "empty.txt"), "");
    await writeFile(join(docs, "referral.png"), await scannedImage("png", ["Referral letter", "The patient has asthma."]));
    await writeFile(join(docs, "notes.odt"), "not read");
    await writeFile(join(docs, "old", "archive.zip"), "not read");

    const submit = await docket(["submit", docs], idle.producer.url);
    expect(submit.code, submit.stderr).toBe(0);
    expect(submit.stderr).toContain(`skipped 2 files that docket does not read`);
    expect(submit.stderr).toContain(`  ${join(docs, "notes.odt")}\n  ${join(docs, "old", "archive.zip")}\n`);
    expect(submit.stderr).toContain("2 files were not accepted (the others were):\n");
    expect(submit.stderr).toMatch(/^ {2}corrupt\.pdf: unreadable_file: the PDF file could not be read/m);
    expect(submit.stderr).toMatch(/^ {2}empty\.txt: empty_document: the file holds no text$/m);
    const id = submit.stdout.trim();
    expect(idle.producer.batches.get(id)?.total).toBe(2);
    const jobs = idle.producer.store.list({ batchId: id, limit: 10 }).rows;
    expect(jobs.map((j) => [j.customId, j.input?.ocrPages]).sort()).toEqual([
      ["lease.txt", undefined],
      ["referral.png", [1]],
    ]);
  });

  it("a wrong key is refused before anything is uploaded", async () => {
    const file = join(dir, "one.txt");
    await writeFile(file, "The landlord repairs the roof.");
    const r = await docket(["submit", file, "--api-key", "not-the-key"], locked.producer.url);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/\(unauthorized\)/);
    expect(r.stderr).not.toMatch(/upload/);
    const ok = await docket(["submit", file, "--api-key", "the-admin-key-of-this-test"], locked.producer.url);
    expect(ok.code, ok.stderr).toBe(0);
  });

  it("task and params are checked locally with the server's schema: usage errors, nothing sent", async () => {
    const file = join(dir, "two.txt");
    await writeFile(file, "Neither party discloses the other's secrets.");
    const down = "http://127.0.0.1:1";
    const cases: [string[], RegExp][] = [
      [["--task", "translate"], /^docket submit: --task: /m],
      [["--task", "classify"], /--params params\.labels: is required for task classify/],
      [["--task", "classify", "--params", '{"labels":["only one"]}'], /--params params\.labels: /],
      [["--params", '{"maxTokens":-1}'], /--params params\.maxTokens: /],
      [["--preset", "finance"], /--preset: "finance" is not one of legal, medical/],
      [["--preset", "legal", "--task", "summarize"], /--preset runs the extract task/],
    ];
    for (const [args, message] of cases) {
      // The server is unreachable: a check that reached it would exit 3, not 2.
      const r = await docket(["submit", file, ...args], down);
      expect([r.code, r.stderr], args.join(" ")).toEqual([2, expect.stringMatching(message)]);
    }
  });

  it("--preset legal submits the extract task with the legal schema", async () => {
    const file = join(dir, "three.txt");
    await writeFile(file, "This agreement is made between A and B.");
    const r = await docket(["submit", file, "--preset", "legal"], idle.producer.url);
    expect(r.code, r.stderr).toBe(0);
    const batch = idle.producer.batches.get(r.stdout.trim());
    expect([batch?.task, batch?.params]).toEqual(["extract", { preset: "legal" }]);
  });
});
