import type { Logger } from "../runtime/log.ts";
import type { EventMessage } from "../schema/event.ts";
import type { Canceller } from "./cancel.ts";
import { type ProducerEvents, producerEvent } from "./producer-events.ts";
import type { BatchStore } from "./stores/batches.ts";
import type { JobStore } from "./stores/jobs.ts";

const PAGE = 500;

/** What one sweep did. */
export interface SweepCounts {
  /** Queued jobs failed `deadline_exceeded`. */
  failed: number;
  /** Batches whose completion window ended with work left. */
  expired: number;
}

/**
 * Ends what time has run out on, so nothing waits forever: a queued job whose deadline passed fails
 * `deadline_exceeded` (a worker that pulls one refuses it too, but behind a long backlog it may not be pulled for
 * hours), and a batch whose completion window ended with work left expires (Canceller.expireBatch). Both go the
 * usual way (ProducerEvents: state, batch counters, webhooks, DOCKET_EVENTS). Runs at start and every
 * DOCKET_DEADLINE_CHECK_MS; the queries use indexes, so an idle sweep costs two index probes.
 */
export class Deadlines {
  private timer?: NodeJS.Timeout;
  private sweeping?: Promise<SweepCounts>;

  constructor(
    private readonly jobs: JobStore,
    private readonly batches: BatchStore,
    private readonly events: ProducerEvents,
    private readonly canceller: Canceller,
    private readonly log: Logger,
    private readonly intervalMs: number,
  ) {}

  start(): void {
    void this.sweep();
    this.timer = setInterval(() => void this.sweep(), this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.sweeping;
  }

  /** One pass (a pass under way is joined). */
  sweep(): Promise<SweepCounts> {
    this.sweeping ??= this.pass()
      .catch((err: Error) => {
        this.log.warn({ err: err.message }, "deadline sweep failed; trying again at the next one");
        return { failed: 0, expired: 0 };
      })
      .finally(() => {
        this.sweeping = undefined;
      });
    return this.sweeping;
  }

  private async pass(): Promise<SweepCounts> {
    const counts: SweepCounts = { failed: 0, expired: 0 };
    const now = new Date().toISOString();
    for (;;) {
      const rows = this.jobs.overdue(now, PAGE);
      if (rows.length > 0) await this.events.apply(rows.map((r) => overdueEvent(r, now)));
      counts.failed += rows.length;
      if (rows.length < PAGE) break;
    }
    for (;;) {
      const due = this.batches.dueToExpire(now, PAGE);
      for (const b of due) await this.canceller.expireBatch(b.id);
      counts.expired += due.length;
      if (due.length < PAGE) break;
    }
    if (counts.failed || counts.expired) this.log.info(counts, "deadline sweep");
    return counts;
  }
}

function overdueEvent(row: ReturnType<JobStore["overdue"]>[number], at: string): EventMessage {
  return producerEvent(row, "failed", Math.max(1, row.attempts, row.firstAttempt), at, {
    code: "deadline_exceeded",
    message: `the job's deadline ${row.deadline} passed while it was queued; retry it (POST /v1/jobs/${row.id}/retry) to run it without one`,
    retryable: false,
  });
}
