import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { alertsFor, SUSTAIN_MS } from "../producer/dashboard/alerts.ts";
import { History, type Sample } from "../producer/dashboard/history.ts";
import { latencyByLane, percentile } from "../producer/dashboard/latency.ts";
import { type OpenDatabase, openDatabase } from "../producer/db.ts";
import { Recorder } from "../producer/recorder.ts";
import { BatchStore } from "../producer/stores/batches.ts";
import { JobStore } from "../producer/stores/jobs.ts";
import { createLogger } from "../runtime/log.ts";
import type { EventMessage } from "../schema/event.ts";
import type { JobMessage } from "../schema/job.ts";
import { workerEvent } from "./helpers/jobs.ts";

const sample = (at: number, over: Partial<Sample> = {}): Sample => ({
  at,
  jobsPerSecond: 0,
  tokensPerSecond: 0,
  running: 0,
  inFlight: 0,
  batchSize: 4,
  queued: 0,
  waiting: 0,
  withWorkers: 0,
  workers: 1,
  ...over,
});

describe("dashboard history", () => {
  it("keeps the span asked for, oldest first", () => {
    const h = new History(10_000);
    for (let t = 0; t <= 30_000; t += 5_000) h.add(sample(t));
    expect(h.all().map((s) => s.at)).toEqual([20_000, 25_000, 30_000]);
    expect(h.latest()?.at).toBe(30_000);
  });
});

describe("dashboard alerts", () => {
  const codes = (now: Sample, history: Sample[] = [], sampleMs = 5_000) =>
    alertsFor({ now, history, sampleMs }).map((a) => a.code);

  it("jobs waiting with no live worker is an alert at once; no jobs, no alert", () => {
    expect(codes(sample(0, { workers: 0, queued: 3, waiting: 3 }))).toEqual(["no_worker"]);
    expect(codes(sample(0, { workers: 0 }))).toEqual([]);
    const [alert] = alertsFor({
      now: sample(0, { workers: 0, running: 2 }),
      history: [],
      lastHeartbeat: { workerId: "gpu-1", at: "2026-01-01T00:00:00.000Z" },
      sampleMs: 5_000,
    });
    expect(alert?.message).toContain("the last heartbeat came from gpu-1 at 2026-01-01T00:00:00.000Z");
  });

  it("jobs queued in SQLite with nothing in JetStream is an alert only once it has lasted 15 s", () => {
    const lost = { queued: 2, waiting: 0, withWorkers: 0 };
    const history = [0, 5_000, 10_000].map((t) => sample(t, lost));
    expect(codes(sample(10_000, lost), history.slice(0, 2))).toEqual([]);
    expect(codes(sample(SUSTAIN_MS, lost), history)).toEqual(["queue_not_in_nats"]);
    // A moment when JetStream held a message (just published, or pulled before `started` is recorded) resets it.
    const blip = [sample(0, lost), sample(5_000, { ...lost, withWorkers: 1 }), sample(10_000, lost)];
    expect(codes(sample(SUSTAIN_MS, lost), blip)).toEqual([]);
    // Jobs in JetStream, or none queued: nothing to say.
    expect(
      codes(
        sample(SUSTAIN_MS, { ...lost, waiting: 2 }),
        history.map((s) => ({ ...s, waiting: 2 })),
      ),
    ).toEqual([]);
  });

  it("a failed NATS read neither raises nor resets the lost-queue alert; two in a row say NATS is unreachable", () => {
    const lost = { queued: 2, waiting: 0, withWorkers: 0 };
    const history = [sample(0, lost), sample(5_000, { ...lost, waiting: null, withWorkers: null }), sample(10_000, lost)];
    expect(codes(sample(SUSTAIN_MS, lost), history)).toEqual(["queue_not_in_nats"]);
    const down = { waiting: null, withWorkers: null };
    expect(codes(sample(5_000, down), [sample(0)])).toEqual([]);
    expect(codes(sample(5_000, down), [sample(0, down)])).toEqual(["nats_unreachable"]);
  });
});

describe("dashboard latency figures", () => {
  it("percentiles are nearest-rank: always a measured value", () => {
    const values = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(values, 0.5)).toBe(50);
    expect(percentile(values, 0.95)).toBe(95);
    expect(percentile([7], 0.95)).toBe(7);
    expect(percentile([], 0.5)).toBe(0);
  });

  it("gives all lanes first, then each lane with jobs, in lane order", () => {
    const rows = [
      { lane: "batch", queueMs: 1_000, runMs: 200 },
      { lane: "interactive", queueMs: 10, runMs: 100 },
      { lane: "batch", queueMs: 3_000, runMs: 400 },
    ];
    expect(latencyByLane(rows)).toEqual([
      { lane: "all", jobs: 3, queueP50Ms: 1_000, queueP95Ms: 3_000, runP50Ms: 200, runP95Ms: 400 },
      { lane: "interactive", jobs: 1, queueP50Ms: 10, queueP95Ms: 10, runP50Ms: 100, runP95Ms: 100 },
      { lane: "batch", jobs: 2, queueP50Ms: 1_000, queueP95Ms: 3_000, runP50Ms: 200, runP95Ms: 400 },
    ]);
  });
});

describe("the job store's dashboard queries", () => {
  let dir: string;
  let database: OpenDatabase;
  let jobs: JobStore;
  let recorder: Recorder;
  const job = (i: number, title?: string): JobMessage => ({
    v: 1,
    id: `job_${i}`,
    lane: "batch",
    task: "summarize",
    input: { text: `doc ${i}`, ...(title ? { title } : {}) },
    params: {},
    batchId: "batch_1",
    customId: `c-${i}`,
    submittedAt: "2026-01-01T00:00:00.000Z",
  });
  const event = (jobId: string, kind: EventMessage["kind"], at: string, code?: string) =>
    workerEvent(jobId, kind, { at, ...(code ? { code } : {}) });

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "docket-dashboard-"));
    database = openDatabase(join(dir, "db.sqlite"));
    const batches = new BatchStore(database.db);
    jobs = new JobStore(database.db);
    recorder = new Recorder(database.db, createLogger("test", "silent"), batches);
    batches.create({
      id: "batch_1",
      lane: "batch",
      task: "summarize",
      params: {},
      total: 4,
      createdAt: "2026-01-01T00:00:00.000Z",
    });
    batches.insertJobs("batch_1", 0, [job(0, "a.pdf"), job(1, "b.docx"), job(2), job(3, "d.txt")]);
    batches.markInProgress("batch_1");
    recorder.apply(event("job_0", "started", "2026-01-01T00:00:01.000Z"));
    recorder.apply(event("job_0", "completed", "2026-01-01T00:00:01.500Z"));
    recorder.apply(event("job_1", "started", "2026-01-01T00:00:02.000Z"));
    recorder.apply(event("job_1", "failed", "2026-01-01T00:00:03.000Z", "timeout"));
    recorder.apply(event("job_2", "started", "2026-01-01T00:00:02.000Z"));
    recorder.apply(event("job_2", "failed", "2026-01-01T01:00:00.000Z", "timeout"));
  });
  afterEach(() => {
    database.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("lists a batch's jobs in order with file names and error codes, by state and by page", () => {
    const all = jobs.summaries({ batchId: "batch_1" }, 10);
    expect(all.map((j) => [j.batchIndex, j.title, j.customId, j.state, j.errorCode])).toEqual([
      [0, "a.pdf", "c-0", "succeeded", null],
      [1, "b.docx", "c-1", "failed", "timeout"],
      [2, null, "c-2", "failed", "timeout"],
      [3, "d.txt", "c-3", "queued", null],
    ]);
    expect(jobs.summaries({ batchId: "batch_1", states: ["failed", "queued"], afterIndex: 1 }, 10).map((j) => j.id)).toEqual([
      "job_2",
      "job_3",
    ]);
    expect(
      jobs
        .summaries({ errorCode: "timeout", states: ["failed"] }, 10)
        .map((j) => j.id)
        .sort(),
    ).toEqual(["job_1", "job_2"]);
  });

  it("groups failures by code, with those since a time, and gives queue and run times of succeeded jobs", () => {
    expect(jobs.failuresByCode("2026-01-01T00:30:00.000Z")).toEqual([
      { code: "timeout", count: 2, recent: 1, lastAt: "2026-01-01T01:00:00.000Z", retryable: true },
    ]);
    const [only, ...rest] = jobs.latencies(10);
    expect(rest).toEqual([]);
    expect(only?.lane).toBe("batch");
    expect(only?.queueMs).toBeCloseTo(1_000, 0);
    expect(only?.runMs).toBeCloseTo(500, 0);
  });
});
