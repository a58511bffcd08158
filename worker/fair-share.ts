/** How fast a key's past service is forgotten: tokens served this long ago count half. */
export const FAIR_HALF_LIFE_MS = 60_000;

/** What a job is taken to cost before any job of its key (or any job at all) has finished. */
const FIRST_ESTIMATE = 512;

/** One key's claim on a lane's free slots: its weight and how many of its jobs are queued. */
export interface Claim {
  /** The API key id; "" for the jobs of no key (the admin key, auth off, other NATS clients). */
  owner: string;
  weight: number;
  pending: number;
}

interface Account {
  /** Tokens served lately (prompt + completion), decayed with FAIR_HALF_LIFE_MS. */
  served: number;
  /** Estimated tokens of its running jobs: counted as served from the moment they start. */
  running: number;
  /** Jobs running. */
  jobs: number;
  /** Tokens per job, a moving average of its finished jobs. */
  perJob: number;
  weight: number;
}

/**
 * Fair shares between API keys, in tokens (start-time fair queuing, as in weighted fair queuing of packets): a free
 * slot goes to the key with the least service over weight, where service is the tokens its finished jobs used
 * (decayed, so "lately") plus the estimated tokens of its running ones. A key that starts queueing after a pause
 * starts level with the least served of the keys already busy: it gets its share from then on, not a burst for the
 * time it was idle. The state is per worker: each worker splits its own slots by weight among the keys with work
 * queued, so together the workers do too, without talking to each other (docs/scheduling.md).
 */
export class FairShare {
  private readonly accounts = new Map<string, Account>();
  /** Keys that had work queued or running at the last allocation. */
  private busy = new Set<string>();
  private perJob = FIRST_ESTIMATE;
  private decayedAt: number;

  constructor(
    private readonly halfLifeMs = FAIR_HALF_LIFE_MS,
    now = Date.now(),
  ) {
    this.decayedAt = now;
  }

  /**
   * Splits `free` slots among the claims, one slot at a time to the least served key (service over weight), each
   * slot adding an estimated job; never more to a key than it has queued. Returns slots by owner.
   */
  allocate(free: number, claims: readonly Claim[], now = Date.now()): Map<string, number> {
    this.decay(now);
    const live = claims.filter((c) => c.pending > 0);
    const level = this.level(live);
    for (const c of live) {
      const a = this.account(c.owner);
      a.weight = c.weight;
      // Back from idle: level with the least served busy key, so past idleness buys no burst.
      if (!this.busy.has(c.owner) && level !== undefined) a.served = Math.max(a.served, level * a.weight);
    }
    this.busy = new Set([...live.map((c) => c.owner), ...[...this.accounts].filter(([, a]) => a.jobs > 0).map(([o]) => o)]);

    const given = new Map<string, number>();
    for (let slot = 0; slot < free; slot++) {
      let best: Claim | undefined;
      let bestCost = Number.POSITIVE_INFINITY;
      for (const c of live) {
        const n = given.get(c.owner) ?? 0;
        if (n >= c.pending) continue;
        const a = this.account(c.owner);
        const cost = (a.served + a.running + n * a.perJob) / a.weight;
        if (cost < bestCost) {
          best = c;
          bestCost = cost;
        }
      }
      if (!best) break;
      given.set(best.owner, (given.get(best.owner) ?? 0) + 1);
    }
    return given;
  }

  /** A job of `owner` started: its estimated cost counts until it ends. Returns the estimate, for end(). */
  begin(owner: string): number {
    const a = this.account(owner);
    a.jobs++;
    a.running += a.perJob;
    return a.perJob;
  }

  /** The job begun with `estimate` ended having used `tokens` (0 when it failed or was cancelled). */
  end(owner: string, estimate: number, tokens: number, now = Date.now()): void {
    this.decay(now);
    const a = this.account(owner);
    a.jobs = Math.max(0, a.jobs - 1);
    a.running = a.jobs === 0 ? 0 : Math.max(0, a.running - estimate);
    a.served += tokens;
    if (tokens > 0) {
      a.perJob = a.perJob * 0.8 + tokens * 0.2;
      this.perJob = this.perJob * 0.9 + tokens * 0.1;
    }
  }

  /** Tokens served lately per owner, over its weight: what the allocation compares (for status and tests). */
  service(now = Date.now()): Record<string, number> {
    this.decay(now);
    return Object.fromEntries([...this.accounts].map(([o, a]) => [o, Math.round((a.served + a.running) / a.weight)]));
  }

  /** The least service over weight of the keys still busy (with claims now), if any. */
  private level(live: readonly Claim[]): number | undefined {
    let min: number | undefined;
    for (const c of live) {
      if (!this.busy.has(c.owner)) continue;
      const a = this.account(c.owner);
      const v = (a.served + a.running) / a.weight;
      if (min === undefined || v < min) min = v;
    }
    for (const [owner, a] of this.accounts) {
      if (a.jobs === 0 || !this.busy.has(owner)) continue;
      const v = (a.served + a.running) / a.weight;
      if (min === undefined || v < min) min = v;
    }
    return min;
  }

  private account(owner: string): Account {
    let a = this.accounts.get(owner);
    if (!a) {
      a = { served: 0, running: 0, jobs: 0, perJob: this.perJob, weight: 1 };
      this.accounts.set(owner, a);
    }
    return a;
  }

  private decay(now: number): void {
    const elapsed = now - this.decayedAt;
    if (elapsed <= 0) return;
    const factor = 0.5 ** (elapsed / this.halfLifeMs);
    for (const [owner, a] of this.accounts) {
      a.served *= factor;
      // Forgotten: neither served lately nor running.
      if (a.served < 1 && a.jobs === 0 && !this.busy.has(owner)) this.accounts.delete(owner);
    }
    this.decayedAt = now;
  }
}
