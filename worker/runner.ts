import type { JsMsg } from "@nats-io/jetstream";
import type { Logger } from "../runtime/log.ts";
import type { JobResult } from "../schema/event.ts";
import { JobId, JobMessage } from "../schema/job.ts";
import { LANES, TASKS } from "../schema/subjects.ts";
import { type Cancellations, CancelledError } from "./cancellations.ts";
import type { Documents } from "./documents.ts";
import type { Engine } from "./engine.ts";
import type { EventPublisher } from "./events.ts";
import { executeJob } from "./execute.ts";
import { JobFailure } from "./failure.ts";

export interface RunnerOptions {
  maxDeliver: number;
  ackWaitMs: number;
  defaultMaxTokens: number;
  /** Least time between two progress events of one job. */
  progressEveryMs: number;
  /** Told of every job it starts running (routing: the worker now holds its document). */
  onStarted?: (job: JobMessage) => void;
  /** Told of every completed job's run time (the batcher's latency signal). */
  onCompleted?: (job: JobMessage, result: JobResult) => void;
  /** Told when the engine fails under load (the batcher halves the batch). */
  onEngineFailed?: () => void;
}

/** Least time between two text-carrying progress events of a streamed (interactive chat) job. */
const STREAM_EVERY_MS = 50;

export function retryDelayMs(attempt: number): number {
  const base = Math.min(60_000, 1_000 * 2 ** (attempt - 1));
  return Math.round(base * (0.75 + Math.random() * 0.5));
}

type Outcome =
  | { kind: "completed"; result: JobResult }
  | { kind: "cancelled" }
  | { kind: "failed"; failure: JobFailure }
  | { kind: "retry"; failure: JobFailure; delayMs: number };

/** Runs one delivered job message to its final event, then acks it. */
export class Runner {
  /** Running jobs by id: a worker runs one attempt of a job at a time. */
  private readonly inFlight = new Map<string, AbortController>();

  constructor(
    private readonly engine: Engine,
    private readonly events: EventPublisher,
    private readonly documents: Documents,
    private readonly cancellations: Cancellations,
    private readonly log: Logger,
    private readonly options: RunnerOptions,
  ) {}

  get running(): number {
    return this.inFlight.size;
  }

  /** Aborts the job's generation if it runs here; it ends `cancelled`. */
  cancel(jobId: string): boolean {
    const ac = this.inFlight.get(jobId);
    ac?.abort(new CancelledError(`job ${jobId} was cancelled`));
    return ac !== undefined;
  }

  /** Aborts every running generation; their messages are nak'ed for another worker. */
  abortAll(): void {
    for (const ac of this.inFlight.values()) ac.abort(new Error("worker shutting down"));
  }

  /** Runs one delivered job to its end; resolves to the tokens it used (prompt + completion; 0 unless it completed). */
  async run(m: JsMsg): Promise<number> {
    const delivery = m.info.deliveryCount;
    const job = this.parse(m);
    if (!job) return 0;
    // A retried job's message starts at the attempt after its last run's, so each attempt's events stay apart.
    const attempt = (job.firstAttempt ?? 1) + delivery - 1;
    if (delivery > 1) {
      const done = await this.events.finalKind(job.id, job.firstAttempt ?? 1).catch(() => undefined);
      if (done) {
        this.log.info({ jobId: job.id, attempt, final: done }, "redelivered job already ended; acked without running");
        await m.ackAck().catch(() => m.nak(1_000));
        return 0;
      }
    }
    const ac = new AbortController();
    this.inFlight.set(job.id, ac);
    const working = setInterval(() => m.working(), Math.max(250, this.options.ackWaitMs / 3));
    const log = this.log.child({ jobId: job.id, batchId: job.batchId, attempt, task: job.task, lane: job.lane });
    let tokens = 0;
    try {
      this.options.onStarted?.(job);
      const outcome = await this.execute(job, attempt, delivery, ac.signal);
      if (outcome.kind === "retry") {
        log.warn({ code: outcome.failure.code, retryInMs: outcome.delayMs }, "job failed; will retry");
        m.nak(outcome.delayMs);
        return 0;
      }
      if (outcome.kind === "cancelled") {
        await this.events.publish(job, attempt, "cancelled");
        log.info("job cancelled");
      } else if (outcome.kind === "completed") {
        await this.events.publish(job, attempt, "completed", { result: outcome.result });
        log.info({ tokens: outcome.result.usage.completionTokens, ms: outcome.result.timings.runMs }, "job completed");
        this.options.onCompleted?.(job, outcome.result);
        tokens = outcome.result.usage.promptTokens + outcome.result.usage.completionTokens;
      } else {
        await this.events.publish(job, attempt, "failed", { error: outcome.failure.toWire() });
        log.warn({ code: outcome.failure.code }, "job failed");
      }
      await m.ackAck();
      return tokens;
    } catch (err) {
      // The final event could not be stored: the job goes back to the queue, nothing is lost.
      log.error({ err: (err as Error).message }, "could not publish the final event; job returned to the queue");
      m.nak(1_000);
      return 0;
    } finally {
      clearInterval(working);
      this.inFlight.delete(job.id);
    }
  }

  private parse(m: JsMsg): JobMessage | undefined {
    let raw: unknown;
    try {
      raw = m.json();
    } catch {
      raw = undefined;
    }
    const parsed = JobMessage.safeParse(raw);
    if (parsed.success) return parsed.data;
    const issue = parsed.error.issues[0];
    const field = issue?.path.join(".") ?? "";
    this.log.warn({ subject: m.subject, seq: m.seq, field }, "invalid job message; terminated");
    // Record the failure when the message names a usable id, so its sender can see why.
    const id = JobId.safeParse((raw as { id?: unknown } | undefined)?.id);
    const [, , lane, task] = m.subject.split(".");
    if (id.success && LANES.includes(lane as never) && TASKS.includes(task as never)) {
      const stub = { v: 1, id: id.data, lane, task, input: {}, params: {}, submittedAt: new Date().toISOString() } as JobMessage;
      const failure = new JobFailure("invalid_job", `invalid job message: ${field || "body"}: ${issue?.message ?? "not JSON"}`);
      void this.events
        .publish(stub, m.info.deliveryCount, "failed", { error: failure.toWire() })
        .then(() => m.term("invalid job message"))
        .catch(() => m.nak(1_000));
    } else m.term("invalid job message");
    return undefined;
  }

  /** `delivery`: this message's delivery count, which JetStream's max_deliver bounds (`attempt` may be higher after a retry). */
  private async execute(job: JobMessage, attempt: number, delivery: number, signal: AbortSignal): Promise<Outcome> {
    const started = Date.now();
    try {
      if (job.deadline && Date.parse(job.deadline) < started) {
        throw new JobFailure("deadline_exceeded", `the job's deadline ${job.deadline} passed before it could run`);
      }
      if (await this.cancellations.isCancelled(job.id, attempt)) return { kind: "cancelled" };
      await this.events.publish(job, attempt, "started");
      let lastProgress = 0;
      let generated = 0;
      // A person waits on an interactive chat: its text streams in progress events (every STREAM_EVERY_MS).
      const streams = job.lane === "interactive" && job.task === "chat";
      let pending = "";
      let offset = 0;
      const { runMs, ...result } = await executeJob(await this.documents.withParams(job), {
        engine: this.engine,
        document: await this.documents.text(job),
        defaultMaxTokens: this.options.defaultMaxTokens,
        signal,
        onTokens: (tokens) => {
          generated = tokens;
          const now = Date.now();
          if (now - lastProgress < (streams ? STREAM_EVERY_MS : this.options.progressEveryMs)) return;
          lastProgress = now;
          this.events.progress(job, attempt, tokens, streams ? { delta: pending, offset } : undefined);
          offset += pending.length;
          pending = "";
        },
        ...(streams ? { onText: (text: string) => (pending += text) } : {}),
      });
      if (streams && pending) this.events.progress(job, attempt, generated, { delta: pending, offset });
      return {
        kind: "completed",
        result: {
          ...result,
          timings: {
            queueMs: Math.max(0, started - Date.parse(job.submittedAt)),
            runMs,
            tokensPerSecond: runMs > 0 ? Math.round((result.usage.completionTokens / runMs) * 1000 * 100) / 100 : 0,
          },
        },
      };
    } catch (err) {
      if (signal.reason instanceof CancelledError) return { kind: "cancelled" };
      if (signal.aborted) {
        return { kind: "retry", failure: new JobFailure("internal", "worker shutting down"), delayMs: 0 };
      }
      const failure = JobFailure.from(err);
      if (failure.code === "engine_error") this.options.onEngineFailed?.();
      if (failure.retryable && delivery < this.options.maxDeliver) {
        return { kind: "retry", failure, delayMs: retryDelayMs(delivery) };
      }
      if (failure.retryable) {
        return {
          kind: "failed",
          failure: new JobFailure(failure.code, `${failure.message} (gave up after ${delivery} attempts)`),
        };
      }
      return { kind: "failed", failure };
    }
  }
}
