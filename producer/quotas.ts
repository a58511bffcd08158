import type { KeyQuotas } from "../schema/api.ts";
import { ApiError } from "./errors.ts";
import type { KeyStore } from "./stores/api-keys.ts";
import type { JobStore } from "./stores/jobs.ts";
import { type UsageStore, utcDay } from "./stores/usage.ts";

/** Retry-After when queued work holds the quota: it frees up as the key's jobs run. */
const QUEUED_RETRY_SECONDS = 30;

/** What a submission adds: its jobs, and their estimated tokens (TokenEstimator). */
export interface Demand {
  jobs: number;
  tokens: number;
}

/**
 * Per-key quotas, stored with the key (POST and PATCH /v1/keys): jobs queued at once, and tokens per UTC day,
 * counting what the key's jobs used today (usage_daily), the estimate of its queued and running jobs, and the
 * submission. A submission over either is refused whole, before anything is written: 429 `quota_exceeded` with
 * Retry-After (the next UTC midnight when today's usage alone fills the day, else QUEUED_RETRY_SECONDS). What is
 * admitted stays reserved until its rows are written (release), so concurrent submissions cannot both slip under.
 * The admin key and jobs submitted with auth off have no quota.
 */
export class Quotas {
  private readonly reserved = new Map<string, Demand>();

  constructor(
    private readonly keys: Pick<KeyStore, "quota">,
    private readonly jobs: Pick<JobStore, "ownerLoad">,
    private readonly usage: Pick<UsageStore, "tokensOn">,
  ) {}

  /** Admits the demand or throws quota_exceeded; call the returned function once its rows are written (or not). */
  admit(owner: string | null, demand: Demand, now = new Date()): () => void {
    const quota = owner === null ? undefined : this.keys.quota(owner);
    if (owner === null || !quota) return () => undefined;
    this.check(owner, quota, demand, now);
    const held = this.reserved.get(owner) ?? { jobs: 0, tokens: 0 };
    this.reserved.set(owner, { jobs: held.jobs + demand.jobs, tokens: held.tokens + demand.tokens });
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const r = this.reserved.get(owner);
      if (!r) return;
      const left = { jobs: r.jobs - demand.jobs, tokens: r.tokens - demand.tokens };
      if (left.jobs <= 0 && left.tokens <= 0) this.reserved.delete(owner);
      else this.reserved.set(owner, left);
    };
  }

  private check(owner: string, quota: KeyQuotas, demand: Demand, now: Date): void {
    const load = this.jobs.ownerLoad(owner);
    const held = this.reserved.get(owner) ?? { jobs: 0, tokens: 0 };
    if (quota.queuedJobs !== null) {
      const queued = load.queued + held.jobs;
      if (queued + demand.jobs > quota.queuedJobs)
        throw exceeded(
          `this key has ${queued} jobs queued and its quota is ${quota.queuedJobs}; ${demand.jobs} more do not fit (nothing was accepted)`,
          QUEUED_RETRY_SECONDS,
        );
    }
    if (quota.tokensPerDay !== null) {
      const used = this.usage.tokensOn(owner, utcDay(now.toISOString()));
      const open = load.tokens + held.tokens;
      if (used + open + demand.tokens > quota.tokensPerDay) {
        const dayFull = used + demand.tokens > quota.tokensPerDay;
        throw exceeded(
          `this key's quota is ${quota.tokensPerDay} tokens a day (UTC): ${used} used today, about ${open} in its queued and running jobs, and this submission needs about ${demand.tokens} (nothing was accepted)`,
          dayFull ? secondsToNextUtcDay(now) : QUEUED_RETRY_SECONDS,
        );
      }
    }
  }
}

function exceeded(message: string, retryAfterSeconds: number): ApiError {
  return new ApiError("quota_exceeded", message, undefined, { "retry-after": String(retryAfterSeconds) });
}

export function secondsToNextUtcDay(now: Date): number {
  const next = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1);
  return Math.max(1, Math.ceil((next - now.getTime()) / 1000));
}
