import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type OpenDatabase, openDatabase } from "../../producer/db.ts";
import { type JobChange, Recorder } from "../../producer/recorder.ts";
import { JobStore } from "../../producer/stores/jobs.ts";
import { createLogger } from "../../runtime/log.ts";
import type { EventMessage } from "../../schema/event.ts";

let dir: string;
let database: OpenDatabase;
let recorder: Recorder;
let store: JobStore;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "docket-recorder-"));
  database = openDatabase(join(dir, "docket.db"));
  recorder = new Recorder(database.db, createLogger("test", "silent"));
  store = new JobStore(database.db);
});
afterEach(async () => {
  database.close();
  await rm(dir, { recursive: true, force: true });
});

const event = (kind: EventMessage["kind"], extra: Partial<EventMessage> = {}): EventMessage => ({
  v: 1,
  jobId: "job_a",
  kind,
  attempt: 1,
  workerId: "w1",
  at: new Date().toISOString(),
  lane: "batch",
  task: "summarize",
  submittedAt: "2026-01-01T00:00:00.000Z",
  ...extra,
});

const result = {
  text: "summary",
  usage: { promptTokens: 10, completionTokens: 5 },
  timings: { queueMs: 1, runMs: 2, tokensPerSecond: 3 },
  model: "m",
};

describe("recorder (real SQLite file)", () => {
  it("applying the same events twice changes nothing", () => {
    expect(recorder.apply(event("started"), 1)).toBe("running");
    expect(recorder.apply(event("completed", { result }), 2)).toBe("succeeded");
    const after = store.get("job_a");
    expect(recorder.apply(event("started"), 1)).toBeUndefined();
    expect(recorder.apply(event("completed", { result }), 2)).toBeUndefined();
    expect(store.get("job_a")).toEqual(after);
    const count = database.sqlite.prepare("select count(*) n from job_events where job_id = 'job_a'").get() as { n: number };
    expect(count.n).toBe(2);
  });

  it("a job first seen through its events is recorded all the same", () => {
    recorder.apply(event("started"));
    const row = store.get("job_a");
    expect(row).toMatchObject({ id: "job_a", state: "running", lane: "batch", task: "summarize", attempts: 1 });
  });

  it("a terminal state is never left: a late started event of another attempt changes nothing", () => {
    recorder.apply(event("started"));
    recorder.apply(event("failed", { error: { code: "engine_error", message: "x", retryable: true } }));
    recorder.apply(event("started", { attempt: 2 }));
    expect(store.get("job_a")?.state).toBe("failed");
    expect(store.get("job_a")?.error?.code).toBe("engine_error");
  });

  it("a final event of another attempt after the job ended changes nothing and is not reported as a change", () => {
    const changes: string[] = [];
    recorder.on("change", (c: JobChange) => changes.push(c.state));
    recorder.apply(event("started"));
    expect(recorder.apply(event("completed", { result }))).toBe("succeeded");
    const after = store.get("job_a");
    // The worker's ack was lost, the job came back as attempt 2 and finished (or failed) again.
    expect(recorder.apply(event("completed", { attempt: 2, result }))).toBeUndefined();
    expect(
      recorder.apply(event("failed", { attempt: 3, error: { code: "internal", message: "x", retryable: true } })),
    ).toBeUndefined();
    expect(store.get("job_a")).toEqual(after);
    expect(changes).toEqual(["running", "succeeded"]);
  });

  it("a redelivered attempt raises the attempt count and keeps the first start time", () => {
    recorder.apply(event("started", { at: "2026-01-01T00:00:01.000Z" }));
    recorder.apply(event("started", { attempt: 2, at: "2026-01-01T00:00:09.000Z" }));
    recorder.apply(event("completed", { attempt: 2, result }));
    expect(store.get("job_a")).toMatchObject({ state: "succeeded", attempts: 2, startedAt: "2026-01-01T00:00:01.000Z" });
  });
});
