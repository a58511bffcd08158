import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type OpenDatabase, openDatabase } from "../producer/db.ts";
import { Recorder } from "../producer/recorder.ts";
import { BatchStore, toBatchView } from "../producer/stores/batches.ts";
import { createLogger } from "../runtime/log.ts";
import type { EventMessage } from "../schema/event.ts";
import type { JobMessage } from "../schema/job.ts";
import { workerEvent } from "./helpers/jobs.ts";

let dir: string;
let database: OpenDatabase;
let batches: BatchStore;
let recorder: Recorder;

const job = (i: number): JobMessage => ({
  v: 1,
  id: `job_${i}`,
  lane: "batch",
  task: "summarize",
  input: { text: `doc ${i}` },
  params: {},
  batchId: "batch_1",
  submittedAt: "2026-01-01T00:00:00.000Z",
});
const event = (jobId: string, kind: EventMessage["kind"], attempt = 1) => workerEvent(jobId, kind, { attempt });

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "docket-counters-"));
  database = openDatabase(join(dir, "db.sqlite"));
  batches = new BatchStore(database.db);
  recorder = new Recorder(database.db, createLogger("test", "silent"), batches);
  batches.create({
    id: "batch_1",
    lane: "batch",
    task: "summarize",
    params: {},
    total: 3,
    createdAt: "2026-01-01T00:00:00.000Z",
  });
  batches.insertJobs("batch_1", 0, [job(0), job(1), job(2)]);
  batches.markInProgress("batch_1");
});
afterEach(() => {
  database.close();
  rmSync(dir, { recursive: true, force: true });
});

const view = () => toBatchView(batches.get("batch_1") ?? (undefined as never));

describe("batch counters follow job events", () => {
  it("a batch is in_progress until its last job ends, then completed, and counts match", () => {
    recorder.apply(event("job_0", "started"));
    expect(view()).toMatchObject({ state: "in_progress", counts: { queued: 2, running: 1 } });
    recorder.apply(event("job_0", "completed"));
    recorder.apply(event("job_1", "started"));
    recorder.apply(event("job_1", "failed"));
    expect(view().state).toBe("in_progress");
    recorder.apply(event("job_2", "started"));
    recorder.apply(event("job_2", "completed"));
    expect(view()).toMatchObject({
      state: "completed",
      counts: { queued: 0, running: 0, succeeded: 2, failed: 1, cancelled: 0 },
      progress: { done: 3, total: 3 },
    });
    expect(view().finishedAt).toBeTruthy();
  });

  it("an event applied twice, a retry's second start and a late event after the end move nothing", () => {
    recorder.apply(event("job_0", "started"));
    recorder.apply(event("job_0", "started"));
    recorder.apply(event("job_0", "started", 2));
    expect(view().counts).toMatchObject({ queued: 2, running: 1 });
    recorder.apply(event("job_0", "completed", 2));
    recorder.apply(event("job_0", "completed", 2));
    recorder.apply(event("job_0", "failed", 3));
    expect(view().counts).toMatchObject({ queued: 2, running: 0, succeeded: 1, failed: 0 });
  });

  it("a batch with a cancel request ends cancelled, not completed", () => {
    batches.requestCancel("batch_1");
    expect(view().state).toBe("cancelling");
    for (const id of ["job_0", "job_1", "job_2"]) recorder.apply(event(id, "cancelled"));
    expect(view()).toMatchObject({ state: "cancelled", counts: { cancelled: 3, queued: 0 } });
  });

  it("a batch left validating by a dead producer is failed at start-up and its jobs removed", () => {
    batches.create({
      id: "batch_2",
      lane: "batch",
      task: "summarize",
      params: {},
      total: 9,
      createdAt: "2026-01-01T00:00:00.000Z",
    });
    batches.insertJobs("batch_2", 0, [{ ...job(10), batchId: "batch_2" }]);
    expect(batches.recoverInterrupted()).toBe(1);
    expect(batches.get("batch_2")).toMatchObject({ state: "failed", total: 0 });
    expect(batches.results("batch_2", -1, 10)).toEqual([]);
    expect(batches.get("batch_1")?.state).toBe("in_progress");
  });

  it("a batch another NATS client published is counted from its jobs' events, job by job as they are seen", () => {
    const seen = (jobId: string, kind: EventMessage["kind"]) => ({ ...event(jobId, kind), batchId: "batch_nats" });
    const nats = () => toBatchView(batches.get("batch_nats") ?? (undefined as never));
    recorder.apply(seen("job_a", "started"));
    expect(nats()).toMatchObject({ state: "in_progress", total: 1, counts: { queued: 0, running: 1 } });
    recorder.apply(seen("job_a", "completed"));
    expect(nats()).toMatchObject({ state: "completed", progress: { done: 1, total: 1 } });
    recorder.apply(seen("job_b", "started"));
    expect(nats()).toMatchObject({ state: "in_progress", total: 2, counts: { running: 1, succeeded: 1 }, finishedAt: null });
    recorder.apply(seen("job_b", "failed"));
    recorder.apply(seen("job_b", "failed"));
    expect(nats()).toMatchObject({
      state: "completed",
      counts: { queued: 0, running: 0, succeeded: 1, failed: 1, cancelled: 0 },
      progress: { done: 2, total: 2 },
    });
  });
});
