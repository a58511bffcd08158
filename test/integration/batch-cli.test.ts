import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
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
    await writeFile(join(docs, "photo.png"), "not a document");

    const submit = await docket(["submit", docs, "--params", '{"maxTokens":8}']);
    expect(submit.code, submit.stderr).toBe(0);
    const id = submit.stdout.trim();
    expect(id).toMatch(/^batch_\w+$/);
    expect(submit.stderr).toMatch(/upload 100%/);
    expect(submit.stderr).toMatch(/skipped 1 files/);

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
