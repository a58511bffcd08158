import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDatabase } from "../../producer/db.ts";
import { backupDatabase, restoreDatabase } from "../../tools/backup.ts";
import { startStack, type TestStack } from "../helpers/stack.ts";

const run = promisify(execFile);
const BIN = join(import.meta.dirname, "..", "..", "bin", "docket.js");

let stack: TestStack;
beforeAll(async () => {
  stack = await startStack({ worker: false });
});
afterAll(() => stack?.stop());

async function submit(i: number): Promise<string> {
  const res = await fetch(`${stack.producer.url}/v1/jobs`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ task: "summarize", lane: "batch", input: { text: `document ${i}` } }),
  });
  expect(res.status).toBe(202);
  return ((await res.json()) as { id: string }).id;
}

describe("backup and restore", () => {
  it("a backup taken while the producer writes restores to a database with every job acknowledged before it began", async () => {
    const acknowledged: string[] = [];
    for (let i = 0; i < 20; i++) acknowledged.push(await submit(i));
    let writing = true;
    const writer = (async () => {
      for (let i = 20; writing && i < 2_000; i++) await submit(i);
    })();
    const dest = join(stack.dir, "backup.db");
    const before = [...acknowledged];
    const result = await backupDatabase(stack.config.DOCKET_DB, dest);
    writing = false;
    await writer;
    expect(result.jobs).toBeGreaterThanOrEqual(before.length);

    const restoredFile = join(stack.dir, "restored.db");
    const { jobs } = await restoreDatabase(dest, restoredFile);
    expect(jobs).toBe(result.jobs);
    const restored = openDatabase(restoredFile);
    try {
      expect(restored.sqlite.pragma("integrity_check", { simple: true })).toBe("ok");
      const ids = new Set((restored.sqlite.prepare("SELECT id FROM jobs").all() as { id: string }[]).map((r) => r.id));
      for (const id of before) expect(ids.has(id)).toBe(true);
    } finally {
      restored.close();
    }
  });

  it("docket backup prints the copy's job count and docket restore puts it in place", async () => {
    await submit(9_999);
    const dest = join(stack.dir, "cli-backup.db");
    const backup = await run(process.execPath, [BIN, "backup", dest, "--db", stack.config.DOCKET_DB]);
    expect(backup.stdout).toMatch(/cli-backup\.db: \d+ jobs, \d+ pages, \d+ ms \(integrity ok\)/);
    const target = join(stack.dir, "cli-restored.db");
    const restore = await run(process.execPath, [BIN, "restore", dest, "--db", target]);
    expect(restore.stdout).toMatch(/restored from .*cli-backup\.db \(\d+ jobs\)/);
  });

  it("restore refuses a file that is not a docket database", async () => {
    const err = await run(process.execPath, [BIN, "restore", BIN, "--db", join(stack.dir, "x.db")]).catch((e) => e);
    expect(err.code).toBe(1);
    expect(err.stderr).toMatch(/could not restore/);
  });
});
