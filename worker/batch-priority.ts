import type { BatchItem, CustomBatchingPrioritizationStrategy, PrioritizedBatchItem } from "node-llama-cpp";

/** The evaluation priority of a job a person waits for (the interactive lane): Engine.generate sets it. */
export const URGENT_PRIORITY = 5;

/**
 * Which queued tokens go into the next decode step (node-llama-cpp's batching.itemPrioritizationStrategy).
 * While any sequence of an interactive job has tokens queued, the step holds only those: the batch lanes'
 * sequences wait a step instead of sharing it. node-llama-cpp's own strategies only order by priority, and
 * when one step fits everything (it usually does: 512 tokens) the interactive job's every token still pays
 * for the whole batch's tokens. On hardware where a step costs in proportion to its tokens (a CPU; a GPU
 * past its batching sweet spot) that made an interactive job 2-3x slower under load (issue 9). The batch
 * sequences still advance one token a step between the interactive job's steps (it samples in between),
 * and at full speed once it ends. Otherwise: every item gets an equal share of the step, what is left goes to the
 * higher priorities first (node-llama-cpp's "maximumParallelism").
 */
export function urgentFirst(
  urgentRunning: () => boolean = () => false,
  /** Most tokens in a step of batch-lane work (an interactive job arriving mid-step waits for it); unset: the whole step. */
  stepTokens?: number,
  /** Keeps batch-lane steps short in time while people's jobs are about (DOCKET_STEP_MS). */
  budget?: StepBudget,
): CustomBatchingPrioritizationStrategy {
  const choose = ({ items, size }: Parameters<CustomBatchingPrioritizationStrategy>[0]): PrioritizedBatchItem[] => {
    const urgent = items.filter((i) => i.evaluationPriority >= URGENT_PRIORITY);
    if (urgent.length > 0) return shareFairly(urgent, size);
    // Between two steps of an interactive job (it is sampling), the batch sequences go on one token each:
    // a step with a batch job's 512-token prompt chunk would hold up the interactive job's next token.
    // (Advancing only one batch sequence a step, in turn, measured no better: p95 under load 5.9 s in one run.)
    if (urgentRunning()) return items.map((item) => ({ item, processAmount: 1 }));
    // Every sequence still gets a token: generation never waits for another job's prompt.
    const cap = Math.min(stepTokens ?? size, budget?.limit() ?? size);
    return shareFairly(items, Math.min(size, Math.max(items.length, cap)));
  };
  if (!budget) return choose;
  return (input) => {
    const out = choose(input);
    budget.started(
      out.reduce((n, p) => n + p.processAmount, 0),
      urgentRunning() || out.some((p) => p.item.evaluationPriority >= URGENT_PRIORITY),
    );
    return out;
  };
}

/** How long after a person's job a batch-lane step stays within its time budget (StepBudget). */
export const PEOPLE_ABOUT_MS = 60_000;

/** Steps of at least this many tokens measure what a prompt token costs (fewer: decode steps, dominated by overhead). */
const MEASURED_STEP_TOKENS = 64;

/** The measured steps the cost per token is the median of: an idle gap after a step reads as one slow outlier. */
const MEASURED_STEPS = 9;

/**
 * A time budget for a batch-lane decode step while people's jobs are about (one ran in the last PEOPLE_ABOUT_MS).
 * An interactive job arriving mid-step waits for the step in flight, and a step of batch prompts (up to the context's
 * batch, 512 tokens) is the longest there is: 279 ms on the bench model and 724 ms on the f16 batch model here,
 * where prompt tokens per second hardly change between 128- and 512-token steps (-2% and -3%). So while people are
 * about, a step carries at most `ms` of prompt work, from the measured cost of a token: the median over the last
 * MEASURED_STEPS steps of ≥ MEASURED_STEP_TOKENS tokens of the time from one step's start to the next's. On a GPU,
 * where a 512-token step takes a fraction of the budget, nothing changes; with no person about, nothing either.
 */
export class StepBudget {
  private readonly samples: number[] = [];
  private last?: { at: number; tokens: number };
  private urgentAt = Number.NEGATIVE_INFINITY;

  constructor(
    readonly ms: number,
    private readonly now: () => number = () => performance.now(),
    private readonly aboutMs = PEOPLE_ABOUT_MS,
  ) {}

  /** Most tokens a batch-lane step may carry now; undefined: no limit (no person about, or nothing measured yet). */
  limit(): number | undefined {
    if (this.ms <= 0 || this.now() - this.urgentAt > this.aboutMs || this.samples.length < 3) return undefined;
    const sorted = [...this.samples].sort((a, b) => a - b);
    const perToken = sorted[Math.floor(sorted.length / 2)] as number;
    return Math.max(1, Math.floor(this.ms / perToken));
  }

  /** A step starts with `tokens` tokens; `urgent`: a person's job is running. Measures the step before. */
  started(tokens: number, urgent: boolean): void {
    const at = this.now();
    if (this.last && this.last.tokens >= MEASURED_STEP_TOKENS) {
      this.samples.push((at - this.last.at) / this.last.tokens);
      if (this.samples.length > MEASURED_STEPS) this.samples.shift();
    }
    this.last = { at, tokens };
    if (urgent) this.urgentAt = at;
  }
}

/** How long a decode step waits for a sequence of the previous step to queue its next token (lockstep). */
export const LOCKSTEP_WAIT_MS = 2;

/** While an interactive job runs, the batch sequences still get a step (one token each) at least this often. */
export const URGENT_BATCH_EVERY_MS = 100;

/** Empty rounds a put-off step always gets (a few microseconds each; the trailing sequence needed ~3). */
const LOCKSTEP_MIN_ROUNDS = 32;

/** What the decode steps carried since load: how well sequences were batched (worker metrics, tests, benchmark). */
export interface DecodeStepStats {
  /** Decode steps run. */
  steps: number;
  /** Sequences they carried, summed: items / steps is the mean batch. */
  items: number;
  /** Steps held back for a sequence of the previous step, and for how long in all. */
  waits: number;
  waitedMs: number;
}

/** Stats of no decode step yet. */
export const noDecodeSteps = (): DecodeStepStats => ({ steps: 0, items: 0, waits: 0, waitedMs: 0 });

/**
 * Keeps generating sequences in one decode step (lockstep). After a step, node-llama-cpp samples every sequence
 * and starts the next step as soon as the sampling is done; the sequence whose token is handed back last has not
 * queued its next token yet (its continuation is a few promise hops longer than the decode loop's), so it misses
 * the step and runs in the next one with the others' following tokens. Measured on the real engine, one thread,
 * 4 sequences generating: every step carried 3 of them and one sequence always trailed, so 4 sequences generated
 * no faster than 1-2 (f32 1024x8 model: 30-36 tok/s against 26 at 1 sequence, and 55 in lockstep).
 *
 * Here a step with fewer sequences queued than the previous step held is put off (an empty step: node-llama-cpp's
 * loop goes round again, letting the pending promise continuations run) for at most `waitMs`, then runs with what is
 * there: a sequence whose job ended is waited for once, a newcomer never.
 *
 * The same wait keeps an interactive job's steps back to back (`urgentRunning`): after a step of its tokens, the batch
 * sequences would otherwise run a step of their own while it samples, and its next token waited for that step every
 * time (bench model, two batch jobs generating beside it: its 15 tokens after the first took 134-248 ms, 61-99 ms
 * with the hold, about 70 ms on an idle worker). The batch sequences still get a step (one token each: urgentFirst)
 * when the interactive job is not back within the wait, and at least every `URGENT_BATCH_EVERY_MS`, so a stream of
 * interactive jobs slows the batch lanes but never stops them.
 */
export function lockstep(
  inner: CustomBatchingPrioritizationStrategy,
  stats: DecodeStepStats = noDecodeSteps(),
  waitMs = LOCKSTEP_WAIT_MS,
  urgentRunning: () => boolean = () => false,
  gate?: LockGate,
): CustomBatchingPrioritizationStrategy {
  let expected = 0;
  let since: number | undefined;
  let rounds = 0;
  let urgentLast = false;
  let batchStepAt = performance.now();
  return (input) => {
    if (gate?.yieldStep()) return [];
    const urgentNow = input.items.some((i) => i.evaluationPriority >= URGENT_PRIORITY);
    const now = performance.now();
    // An interactive job between two of its steps (sampling), with the batch sequences served recently enough.
    // (Then the count does not decide: the batch sequences are one fewer than the step before, and would wait too.)
    const hold =
      urgentLast && !urgentNow ? now - batchStepAt < URGENT_BATCH_EVERY_MS && urgentRunning() : input.items.length < expected;
    if (waitMs > 0 && hold) {
      since ??= now;
      // At least LOCKSTEP_MIN_ROUNDS empty rounds whatever the clock says: a process preempted mid-wait on a loaded
      // machine saw 2 ms pass in one round, and its sequences trailed again (a full test suite on 2 cores: 3.05 a step).
      if (rounds++ < LOCKSTEP_MIN_ROUNDS || now - since < waitMs) return [];
    }
    rounds = 0;
    if (since !== undefined) {
      stats.waits++;
      stats.waitedMs += performance.now() - since;
      since = undefined;
    }
    // Each sequence queued now comes back for the next step: with tokens left, or sampling its next token.
    expected = input.items.length;
    const out = inner(input);
    urgentLast = out.some((p) => p.item.evaluationPriority >= URGENT_PRIORITY);
    if (!urgentLast && out.length > 0) batchStepAt = now;
    stats.steps++;
    stats.items += out.length;
    return out;
  };
}

function shareFairly(items: readonly BatchItem[], size: number): PrioritizedBatchItem[] {
  const share = Math.max(1, Math.floor(size / items.length));
  let left = size;
  const out: PrioritizedBatchItem[] = [];
  for (const item of items) {
    if (left <= 0) break;
    const processAmount = Math.min(item.tokens.length, share, left);
    out.push({ item, processAmount });
    left -= processAmount;
  }
  for (const p of [...out].sort((a, b) => b.item.evaluationPriority - a.item.evaluationPriority)) {
    if (left <= 0) break;
    const more = Math.min(p.item.tokens.length - p.processAmount, left);
    p.processAmount += more;
    left -= more;
  }
  return out;
}

/** What LockGate reaches into: node-llama-cpp 3.21's LlamaContext decode queue (internal; checked at attach). */
interface DecodeQueue {
  _queuedDecodes: unknown[];
  _scheduleDecode(): void;
}

/** Steps a waiting operation may have skipped for it (the loop ends after one, unless a decode was queued meanwhile). */
const GATE_YIELDS = 2;

/**
 * Lets a sequence operation that needs node-llama-cpp's context lock (an erase, a state save or load, a checkpoint)
 * run between two decode steps. The context's decode loop holds that lock for as long as a decode is queued, and
 * with two or more sequences generating one always is: an erase waited until the generating jobs ended (an interactive
 * job's first token 0.5-0.9 s late, bench model, two batch jobs generating), and a finished job's sequence could not
 * take the next job until then. While an operation waits, the next step is skipped with the queue set aside, so the
 * loop ends and the lock passes to the operation; the queue is put back on the next turn of the event loop, and its
 * dispatch waits for the lock behind the operation. Without node-llama-cpp's internals (another version) it does
 * nothing and operations wait as before.
 */
export class LockGate {
  private readonly waiting = new Set<{ yields: number }>();
  private queue?: DecodeQueue;
  /** Steps skipped for waiting operations. */
  yielded = 0;

  attach(context: unknown): this {
    const q = context as Partial<DecodeQueue>;
    if (Array.isArray(q._queuedDecodes) && typeof q._scheduleDecode === "function") this.queue = q as DecodeQueue;
    return this;
  }

  /** Runs `op`, which takes the context lock (and evaluates nothing itself), with the decode loop yielding to it. */
  async run<T>(op: () => Promise<T>): Promise<T> {
    const ticket = { yields: 0 };
    this.waiting.add(ticket);
    try {
      return await op();
    } finally {
      this.waiting.delete(ticket);
    }
  }

  /** Called by the step policy before each step: true when this step is skipped so the loop ends and yields the lock. */
  yieldStep(): boolean {
    const q = this.queue;
    if (!q || this.waiting.size === 0) return false;
    let due = false;
    for (const t of this.waiting) if (t.yields++ < GATE_YIELDS) due = true;
    if (!due) return false;
    this.yielded++;
    const held = q._queuedDecodes.splice(0);
    setImmediate(() => {
      q._queuedDecodes.unshift(...held);
      q._scheduleDecode();
    });
    return true;
  }
}
