import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDatabase } from "../producer/db.ts";
import { Recorder } from "../producer/recorder.ts";
import { createLogger } from "../runtime/log.ts";
import type { EventMessage } from "../schema/event.ts";
import { TERMINAL_STATES } from "../schema/job.ts";

let dir: string;
let files = 0;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "docket-recorder-prop-"));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const result = {
  text: "r",
  usage: { promptTokens: 1, completionTokens: 1 },
  timings: { queueMs: 0, runMs: 1, tokensPerSecond: 1 },
  model: "m",
};

/** An event of one of three jobs; (job, kind, attempt) is its identity, the rest follows from it. */
const event = fc
  .record({
    job: fc.constantFrom("job_a", "job_b", "job_c"),
    kind: fc.constantFrom("started", "completed", "failed", "cancelled" as const),
    attempt: fc.integer({ min: 1, max: 3 }),
    second: fc.integer({ min: 0, max: 59 }),
  })
  .map(
    ({ job, kind, attempt, second }): EventMessage => ({
      v: 1,
      jobId: job,
      kind,
      attempt,
      workerId: `w${attempt}`,
      at: `2026-01-01T00:00:${String(second).padStart(2, "0")}.000Z`,
      lane: "batch",
      task: "summarize",
      submittedAt: "2026-01-01T00:00:00.000Z",
      ...(kind === "completed" ? { result } : {}),
      ...(kind === "failed" ? { error: { code: "engine_error", message: `attempt ${attempt}`, retryable: true } } : {}),
    }),
  );
const key = (e: EventMessage) => `${e.jobId}.${e.kind}.${e.attempt}`;

/** A delivery order: distinct events, then redeliveries of any of them inserted at any later point. */
const deliveries = fc.uniqueArray(event, { minLength: 1, maxLength: 12, selector: key }).chain((distinct) =>
  fc.array(fc.record({ which: fc.nat(distinct.length - 1), at: fc.nat() }), { maxLength: 12 }).map((dups) => {
    const order = [...distinct];
    for (const { which, at } of dups) {
      const original = order.indexOf(distinct[which] as EventMessage);
      const pos = original + 1 + (at % (order.length - original));
      order.splice(pos, 0, { ...(distinct[which] as EventMessage) });
    }
    return { distinct, order };
  }),
);

/** Applies events to a fresh SQLite file; checks after each that a terminal state is never left; returns the rows. */
function applyAll(events: EventMessage[]) {
  const database = openDatabase(join(dir, `p${files++}.db`));
  try {
    const recorder = new Recorder(database.db, createLogger("test", "silent"));
    const terminal = new Map<string, unknown>();
    const row = (id: string) => database.sqlite.prepare("select * from jobs where id = ?").get(id) as Record<string, unknown>;
    for (const e of events) {
      recorder.apply(e);
      const before = terminal.get(e.jobId);
      const now = row(e.jobId);
      if (before) expect(now).toEqual(before);
      else if (TERMINAL_STATES.includes(now.state as never)) terminal.set(e.jobId, now);
    }
    return {
      jobs: database.sqlite.prepare("select * from jobs order by id").all(),
      events: database.sqlite
        .prepare("select job_id, kind, attempt, worker_id, at from job_events order by job_id, kind, attempt")
        .all(),
    };
  } finally {
    database.close();
  }
}

describe("recorder idempotence (property-based, real SQLite files)", () => {
  it("events delivered with duplicates, anywhere after the original, give the same rows as each event once", () => {
    fc.assert(
      fc.property(deliveries, ({ distinct, order }) => {
        expect(applyAll(order)).toEqual(applyAll(distinct));
      }),
      { numRuns: 60 },
    );
  });
});
