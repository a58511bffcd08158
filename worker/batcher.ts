/**
 * The adaptive batcher: decides how many of the context's sequences are active.
 *
 * It measures, it does not assume (hybrid models are reported to scale worse with parallel sequences
 * than dense ones). Its objective is generated tokens/s: at a given job mix that ranks batch sizes as
 * jobs/s does, and unlike prompt tokens it does not spike when a bigger batch admits new jobs whose
 * prompts evaluate in bulk. Only windows that ran saturated (every active slot running a job) measure
 * a batch size, each over whole jobs (windowJobs), and the first such window after a change or after an
 * idle spell is skipped: slots are still filling and prompts evaluating then.
 *
 * While a step up (doubling) raises throughput by more than `gain` and the latency target holds, it
 * keeps climbing; when a step does not pay it refines once or twice between the best size and its
 * neighbours, settles on the best size measured, and now and then probes one step above because the
 * workload changes. It keeps that size across idle spells, so a new backlog starts from the last good
 * size, and it neither probes nor decides while nothing waits. Latency over target or an engine failure
 * under load cuts the batch at once.
 */

export interface BatcherOptions {
  /** Sequences the context holds: the ceiling. */
  max: number;
  /** Batch size to start from. */
  initial?: number;
  /** p95 job run time (ms) above which the batch is cut. 0 disables the latency rule. */
  latencyTargetMs?: number;
  /** Length of a measurement window. */
  windowMs?: number;
  /** Relative throughput gain a step up must bring to count as better. */
  gain?: number;
  /** Saturated windows at the settled size between two probes one step up. */
  probeEvery?: number;
}

export interface BatcherDecision {
  limit: number;
  previous: number;
  reason: string;
  tokensPerSecond: number;
}

export interface BatcherStatus {
  limit: number;
  phase: "explore" | "refine" | "settled";
  tokensPerSecond: number;
  /** Measured generated tokens/s per batch size (mean of the last two windows at that size). */
  measured: Record<number, number>;
}

/**
 * Jobs a measuring window must see end at batch size `limit` (see tick). A window's edges cut at most one job per
 * slot; slots whose jobs are out of step cut them at different points, so the error falls as the square root of the
 * slots: two jobs per slot at 1 sequence, 8 at 16.
 */
export const windowJobs = (limit: number) => 2 * Math.ceil(Math.sqrt(limit));

/** The longest a window is held open for its jobs to end, in windows (very long jobs: the window measures anyway). */
const MAX_WINDOW_FACTOR = 8;

const p95 = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * 0.95))] ?? 0;
};

export class AdaptiveBatcher {
  private limit: number;
  private phase: BatcherStatus["phase"] = "explore";
  private direction: 1 | -1 = 1;
  /** The size explored before the current one, and the size exploration started from. */
  private from: number | undefined;
  private start: number;
  private refineSteps = 0;
  /** The next saturated window is a transition (start, a size change, the end of an idle spell): skip it. */
  private skip = true;
  /** A probe that does not pay goes back to the best size, not exploring downwards. */
  private probing = false;
  private readonly measured = new Map<number, number>();
  private windowStart: number;
  private windowTokens = 0;
  private busySamples = 0;
  private saturatedSamples = 0;
  private latencies: number[] = [];
  private settledWindows = 0;
  private lastTps = 0;
  private readonly o: Required<BatcherOptions>;

  constructor(options: BatcherOptions, now = Date.now()) {
    this.o = {
      initial: 1,
      latencyTargetMs: 0,
      windowMs: 2_000,
      gain: 0.05,
      probeEvery: 30,
      ...options,
    };
    this.limit = Math.max(1, Math.min(this.o.max, this.o.initial));
    this.start = this.limit;
    this.windowStart = now;
  }

  get current(): number {
    return this.limit;
  }

  status(): BatcherStatus {
    return {
      limit: this.limit,
      phase: this.phase,
      tokensPerSecond: this.lastTps,
      measured: Object.fromEntries([...this.measured].map(([k, v]) => [k, Math.round(v * 10) / 10])),
    };
  }

  /** Tokens generated (all sequences) since the last call. */
  addTokens(n: number): void {
    this.windowTokens += n;
  }

  /** A job finished after `runMs`. */
  addJob(runMs: number): void {
    this.latencies.push(runMs);
  }

  /** Called every ~250 ms: was every active slot running a job? Only saturated windows measure a batch size. */
  sample(saturated: boolean): void {
    this.busySamples++;
    if (saturated) this.saturatedSamples++;
  }

  /** The engine failed under load (out of memory, decode error): halve the batch now. */
  engineFailed(now = Date.now()): BatcherDecision | undefined {
    if (this.limit === 1) return undefined;
    const previous = this.limit;
    this.limit = Math.max(1, Math.floor(this.limit / 2));
    this.o.max = Math.min(this.o.max, previous - 1);
    this.phase = "settled";
    this.skip = true;
    this.resetWindow(now);
    return { limit: this.limit, previous, reason: "engine failed under load: fewer sequences", tokensPerSecond: this.lastTps };
  }

  /** Ends the window when it is due; returns a decision when the batch size changes. */
  tick(now = Date.now()): BatcherDecision | undefined {
    const elapsed = now - this.windowStart;
    if (elapsed < this.o.windowMs) return undefined;
    const saturated = this.busySamples > 0 && this.saturatedSamples / this.busySamples >= 0.8;
    // A saturated window stays open until enough jobs ended in it (or it ran MAX_WINDOW_FACTOR windows): a job
    // generates only after its prompt is evaluated, so a window of a job or two measures where the slots happened
    // to be in their jobs, an error as large as the differences between batch sizes.
    if (saturated && this.latencies.length < windowJobs(this.limit) && elapsed < this.o.windowMs * MAX_WINDOW_FACTOR)
      return undefined;
    const tps = (this.windowTokens * 1000) / elapsed;
    const latencies = this.latencies;
    this.resetWindow(now);
    if (!saturated) {
      // Nothing waits (or too little to fill the batch): nothing is learned, and the next busy window is a transition.
      this.skip = true;
      return undefined;
    }
    if (this.skip) {
      this.skip = false;
      return undefined;
    }
    this.lastTps = tps;
    const before = this.measured.get(this.limit);
    this.measured.set(this.limit, before === undefined ? tps : (before + tps) / 2);

    if (this.o.latencyTargetMs > 0 && latencies.length > 0 && p95(latencies) > this.o.latencyTargetMs && this.limit > 1) {
      const to = Math.max(1, Math.floor(this.limit * 0.75));
      this.o.max = Math.min(this.o.max, this.limit - 1);
      this.phase = "settled";
      return this.move(to, `p95 job latency ${Math.round(p95(latencies))} ms over target ${this.o.latencyTargetMs} ms`, tps);
    }

    switch (this.phase) {
      case "explore": {
        const here = this.measured.get(this.limit) ?? tps;
        const better = this.from === undefined || here > (this.measured.get(this.from) ?? 0) * (1 + this.o.gain);
        if (better) {
          const next = this.direction === 1 ? Math.min(this.o.max, this.limit * 2) : Math.max(1, Math.floor(this.limit / 2));
          if (next !== this.limit && !this.measured.has(next)) {
            this.from = this.limit;
            return this.move(next, `${Math.round(here)} tok/s at batch ${this.limit}: trying ${next}`, tps);
          }
        } else if (
          this.direction === 1 &&
          !this.probing &&
          this.from === this.start &&
          this.start > 1 &&
          !this.measured.has(Math.floor(this.start / 2))
        ) {
          // The first step up did not pay: look below the starting size instead.
          this.direction = -1;
          this.from = this.start;
          return this.move(Math.floor(this.start / 2), `no gain above batch ${this.start}: trying smaller`, tps);
        }
        if (this.probing) return this.settle(tps);
        this.phase = "refine";
        this.refineSteps = 0;
        return this.refine(tps);
      }
      case "refine":
        return this.refine(tps);
      case "settled": {
        // Only a probe moves a settled batch. Comparing this size's fresh windows with another size's old ones
        // flipped it between two sizes that measure alike whenever a window ran slow (the stack, a CPU shared with
        // the producer: 1 -> 2 -> 1 -> 2 every 15-20 s).
        if (++this.settledWindows >= this.o.probeEvery && this.limit < this.o.max) {
          const probe = Math.min(this.o.max, this.limit + Math.max(1, Math.floor(this.limit / 2)));
          this.measured.delete(probe);
          this.phase = "explore";
          this.direction = 1;
          this.from = this.limit;
          this.start = this.limit;
          this.probing = true;
          return this.move(probe, `probing batch ${probe} in case the workload changed`, tps);
        }
        return undefined;
      }
    }
  }

  /** Tries the midpoints between the best size and its measured neighbours (two steps at most), then settles. */
  private refine(tps: number): BatcherDecision | undefined {
    const best = this.best();
    const sizes = [...this.measured.keys()].sort((a, b) => a - b);
    const upper = sizes.find((k) => k > best);
    const lower = sizes.filter((k) => k < best).pop();
    const candidates = [upper, lower].filter((k): k is number => k !== undefined).map((k) => Math.floor((best + k) / 2));
    const mid = candidates.find((m) => m !== best && !this.measured.has(m));
    if (mid !== undefined && this.refineSteps++ < 2) return this.move(mid, `refining around batch ${best}: trying ${mid}`, tps);
    return this.settle(tps);
  }

  private settle(tps: number): BatcherDecision | undefined {
    this.phase = "settled";
    this.probing = false;
    this.settledWindows = 0;
    const best = this.best();
    if (best === this.limit) return undefined;
    return this.move(best, `settling on the best measured batch size ${best}`, tps);
  }

  /** The size with the highest measured throughput; within 2% the smaller one (lower latency) wins. */
  private best(): number {
    let best = this.limit;
    let bestTps = -1;
    for (const [size, tps] of [...this.measured].sort((a, b) => a[0] - b[0])) {
      if (tps > bestTps * 1.02) {
        best = size;
        bestTps = tps;
      }
    }
    return best;
  }

  private move(to: number, reason: string, tps: number): BatcherDecision {
    const previous = this.limit;
    this.limit = to;
    this.skip = true;
    return { limit: to, previous, reason, tokensPerSecond: Math.round(tps * 10) / 10 };
  }

  private resetWindow(now: number): void {
    this.windowStart = now;
    this.windowTokens = 0;
    this.busySamples = 0;
    this.saturatedSamples = 0;
    this.latencies = [];
  }
}
