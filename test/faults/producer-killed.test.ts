import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDatabase } from "../../producer/db.ts";
import { newId } from "../../producer/ids.ts";
import { JobStore } from "../../producer/stores/jobs.ts";
import { createLogger } from "../../runtime/log.ts";
import { connectNats } from "../../runtime/nats.ts";
import { freePort } from "../../tools/nats-server.ts";
import { startWorker, type Worker } from "../../worker/worker.ts";
import { ledger, storedFinalEvents, submitJobs, tinyJob } from "../helpers/jobs.ts";
import { startTestNats, type TestNats } from "../helpers/nats.ts";
import { type DocketProcess, spawnDocket } from "../helpers/processes.ts";
import { testConfig } from "../helpers/stack.ts";

const JOBS = 200;

let nats: TestNats;
let dir: string;
let worker: Worker | undefined;
const producers: DocketProcess[] = [];
beforeAll(async () => {
  nats = await startTestNats();
  dir = await mkdtemp(join(tmpdir(), "docket-producer-kill-"));
});
afterAll(async () => {
  for (const p of producers) await p.kill("SIGKILL");
  await worker?.close(0);
  await nats?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** Final-state rows in the producer's database, read from this process (WAL: a reader beside the writer). */
function terminalRows(db: string): number {
  const database = openDatabase(db);
  try {
    return (
      database.sqlite.prepare("select count(*) n from jobs where state in ('succeeded','failed','cancelled')").get() as {
        n: number;
      }
    ).n;
  } finally {
    database.close();
  }
}

describe("the producer killed with SIGKILL while it records results", () => {
  it("on restart the recorder resumes from its durable consumer, SQLite holds every result, and an unpublished row is republished", async () => {
    const db = join(dir, "docket.db");
    const port = await freePort();
    const env = { NATS_URL: nats.url, DOCKET_DB: db, DOCKET_PORT: String(port), DOCKET_LOG_LEVEL: "warn" };
    const url = `http://127.0.0.1:${port}`;
    const first = spawnDocket("producer/main.ts", env);
    producers.push(first);
    await first.ready;
    worker = await startWorker(
      testConfig({ NATS_URL: nats.url, DOCKET_CONTEXT_SIZE: "256", DOCKET_MAX_BATCH: "4" }),
      createLogger("test", "silent"),
    );

    let kill!: () => void;
    let killRequested = false;
    const killed = new Promise<unknown>((resolve) => {
      kill = () => resolve(first.kill("SIGKILL"));
    });
    const submitting = submitJobs(
      () => url,
      Array.from({ length: JOBS }, (_, i) => tinyJob(i)),
      4,
      (n) => {
        // Half submitted or more, the worker finishing jobs and the recorder writing their results: kill -9.
        if (!killRequested && n >= JOBS / 2 && terminalRows(db) > 0) {
          killRequested = true;
          kill();
        }
      },
    );
    // On a loaded machine every job may be submitted before the first result is recorded: kill then.
    void submitting.then(async () => {
      for (const deadline = Date.now() + 60_000; !killRequested && Date.now() < deadline; ) {
        if (terminalRows(db) > 0) {
          killRequested = true;
          kill();
        } else await new Promise((r) => setTimeout(r, 50));
      }
    });
    expect(await killed).toBe("SIGKILL");
    const recordedBeforeKill = terminalRows(db);

    // A row written but never published: the crash came between the insert and the publish.
    const orphan = newId("job");
    {
      const database = openDatabase(db);
      const submittedAt = new Date(Date.now() - 60_000).toISOString();
      new JobStore(database.db).insert({
        v: 1,
        id: orphan,
        lane: "batch",
        task: "chat",
        input: {},
        params: { maxTokens: 1, messages: [{ role: "user", content: "orphan" }] },
        submittedAt,
      });
      database.close();
    }

    const second = spawnDocket("producer/main.ts", env);
    producers.push(second);
    await second.ready;
    const ids = [...(await submitting), orphan];

    // The restarted producer is another process: read its database until every job is final (with a deadline).
    for (const deadline = Date.now() + 90_000; terminalRows(db) < ids.length && Date.now() < deadline; ) {
      await new Promise((r) => setTimeout(r, 250));
    }
    const database = openDatabase(db);
    try {
      const { states, missing, duplicated } = ledger(database, ids);
      expect(missing).toEqual([]);
      expect(duplicated).toEqual([]);
      expect(states).toEqual({ succeeded: JOBS + 1 });
      const orphanRow = new JobStore(database.db).get(orphan);
      expect(orphanRow?.publishedAt).toBeTruthy();
      expect(orphanRow?.result?.usage.completionTokens).toBe(1);
    } finally {
      database.close();
    }
    const nc = await connectNats(nats.url, "check");
    const stored = await storedFinalEvents(nc);
    await nc.close();
    expect(ids.filter((id) => stored.get(id) !== 1)).toEqual([]);
    // The kill landed while results were being recorded, not before or after all of them.
    expect(recordedBeforeKill).toBeGreaterThan(0);
    expect(recordedBeforeKill).toBeLessThan(JOBS);
  });
});
