import type { Sample } from "./history.ts";

/** Something an operator must act on, shown above everything else on the dashboard. */
export interface Alert {
  code: "nats_unreachable" | "no_worker" | "queue_not_in_nats";
  level: "error" | "warning";
  message: string;
}

/** What the alerts are read from: the latest sample, and the history before it. */
export interface AlertInput {
  now: Sample;
  history: readonly Sample[];
  /** The last heartbeat of any worker, live or gone (ISO time), when one was seen. */
  lastHeartbeat?: { workerId: string; at: string };
  sampleMs: number;
}

/**
 * A job is queued in SQLite before JetStream holds its message, and a worker pulls it before its `started` event is
 * recorded: SQLite and JetStream disagree for a moment in normal operation. An alert about that disagreement waits
 * until it has lasted this long (and at least two samples).
 */
export const SUSTAIN_MS = 15_000;

/**
 * The alerts for one moment: NATS unreachable (two samples in a row); jobs waiting and no worker alive; jobs queued in
 * SQLite while JetStream holds no job message at all (DOCKET_JOBS purged or lost), once that has lasted SUSTAIN_MS.
 */
export function alertsFor({ now, history, lastHeartbeat, sampleMs }: AlertInput): Alert[] {
  const out: Alert[] = [];
  // One read of NATS that timed out (a busy machine) is not an outage: two samples in a row are.
  if (now.waiting === null && history.at(-1)?.waiting === null) {
    out.push({
      code: "nats_unreachable",
      level: "error",
      message:
        "The producer cannot read the job queue from NATS: queue depth is unknown, and new jobs wait in SQLite until they can be published.",
    });
  }
  const waiting = now.queued + now.running + (now.waiting ?? 0);
  if (now.workers === 0 && waiting > 0) {
    const last = lastHeartbeat
      ? `the last heartbeat came from ${lastHeartbeat.workerId} at ${lastHeartbeat.at}`
      : "no worker has sent a heartbeat to this NATS";
    out.push({
      code: "no_worker",
      level: "error",
      message: `Jobs wait (${now.queued} queued and ${now.running} running in SQLite, ${now.waiting ?? "?"} in JetStream) and no worker is alive: ${last}. Start a worker (npm start, or docket-worker.service).`,
    });
  }
  const lost = (s: Sample) => s.queued > 0 && s.waiting === 0 && s.withWorkers === 0;
  if (lost(now) && sustained([...history, now], now.at, Math.max(SUSTAIN_MS, 2 * sampleMs), sampleMs, lost)) {
    out.push({
      code: "queue_not_in_nats",
      level: "error",
      message: `${count(now.queued, "job")} queued in SQLite, but JetStream holds no job message: DOCKET_JOBS was purged or lost, and no worker will see them. A stream made anew is noticed and its jobs republished by the producer; one purged in place is not (docs/operations.md, "When JetStream loses its store").`,
    });
  }
  return out;
}

/** `pred` held for every sample of the last `spanMs` that read NATS, and those cover the span (to half an interval). */
function sustained(
  samples: readonly Sample[],
  at: number,
  spanMs: number,
  sampleMs: number,
  pred: (s: Sample) => boolean,
): boolean {
  // A sample whose NATS read failed says nothing either way.
  const recent = samples.filter((s) => at - s.at <= spanMs + sampleMs / 2 && s.waiting !== null);
  const first = recent[0];
  return recent.length >= 2 && first !== undefined && at - first.at >= spanMs - sampleMs / 2 && recent.every(pred);
}

const count = (n: number, what: string) => `${n} ${what}${n === 1 ? "" : "s"}`;
