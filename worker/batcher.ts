/**
 * The adaptive batcher: decides how many of the context's sequences are active.
 *
 * It measures, it does not assume (hybrid models are reported to scale worse with parallel sequences
 * than dense ones). Each measurement window that ran saturated (every active slot busy) records the
 * aggregate tokens/s of that batch size. While throughput rises by more than `gain` per step and the
 * per-job latency target holds, the batch doubles; when a step up does not pay, it settles on the best
 * size measured, refines once between that size and the one above, and re-probes now and then because
 * the workload changes. Latency over target or an engine failure under load cuts the batch at once.
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
  /** Settled windows between two probes one step up. */
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
  /** Measured tokens/s per batch size (EWMA). */
  measured: Record<number, number>;
}

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
  private warm = false;
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
      probeEvery: 15,
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
      measured: Object.fromEntries(this.measured),
    };
  }

  /** Tokens processed (prompts evaluated and tokens generated, all sequences) since the last call. */
  addTokens(n: number): void {
    this.windowTokens += n;
  }

  /** A job finished after `runMs`. */
  addJob(runMs: number): void {
    this.latencies.push(runMs);
  }

  /** Called every ~250 ms: were all the batch's slots busy? Only saturated windows measure a batch size. */
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
    this.resetWindow(now);
    return { limit: this.limit, previous, reason: "engine failed under load: fewer sequences", tokensPerSecond: this.lastTps };
  }

  /** Ends the window when it is due; returns a decision when the batch size changes. */
  tick(now = Date.now()): BatcherDecision | undefined {
    const elapsed = now - this.windowStart;
    if (elapsed < this.o.windowMs) return undefined;
    const tps = (this.windowTokens * 1000) / elapsed;
    const saturated = this.busySamples > 0 && this.saturatedSamples / this.busySamples >= 0.8;
    const latencies = this.latencies;
    this.resetWindow(now);
    if (!saturated) return undefined; // no backlog: nothing was learned about this batch size
    // The first saturated window runs on a cold engine (measured: ~40% under steady state): learn nothing from it.
    if (!this.warm) {
      this.warm = true;
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
        this.phase = "refine";
        this.refineSteps = 0;
        return this.refine(tps);
      }
      case "refine":
        return this.refine(tps);
      case "settled": {
        const best = this.best();
        if (this.limit !== best) return this.settle(tps);
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

  /** Tries the midpoints between the best size and its measured neighbours (a few steps), then settles. */
  private refine(tps: number): BatcherDecision | undefined {
    const best = this.best();
    const sizes = [...this.measured.keys()].sort((a, b) => a - b);
    const upper = sizes.find((k) => k > best);
    const lower = sizes.filter((k) => k < best).pop();
    const candidates = [upper, lower].filter((k): k is number => k !== undefined).map((k) => Math.floor((best + k) / 2));
    const mid = candidates.find((m) => m !== best && !this.measured.has(m));
    if (mid !== undefined && this.refineSteps++ < 3) return this.move(mid, `refining around batch ${best}: trying ${mid}`, tps);
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

  /** The size with the highest measured throughput; within 1% the smaller one (lower latency) wins. */
  private best(): number {
    let best = this.limit;
    let bestTps = -1;
    for (const [size, tps] of [...this.measured].sort((a, b) => a[0] - b[0])) {
      if (tps > bestTps * 1.01) {
        best = size;
        bestTps = tps;
      }
    }
    return best;
  }

  private move(to: number, reason: string, tps: number): BatcherDecision {
    const previous = this.limit;
    this.limit = to;
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
