import { getConnInfo } from "@hono/node-server/conninfo";
import type { Context, MiddlewareHandler } from "hono";
import { ApiError } from "./errors.ts";

/** Buckets kept at most; past it, full buckets (idle callers) are dropped first, then the oldest. */
const MAX_BUCKETS = 10_000;

interface Bucket {
  tokens: number;
  at: number;
}

/** Token buckets in memory, one per caller: `perSecond` refill, `burst` capacity. */
export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    readonly perSecond: number,
    readonly burst: number,
  ) {}

  /** Takes one token for `who`: 0 when allowed, else the whole seconds until a token is there. */
  take(who: string, now = Date.now()): number {
    let b = this.buckets.get(who);
    if (b) {
      b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.perSecond);
      b.at = now;
    } else {
      if (this.buckets.size >= MAX_BUCKETS) this.evict(now);
      b = { tokens: this.burst, at: now };
      this.buckets.set(who, b);
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - b.tokens) / this.perSecond));
  }

  get size(): number {
    return this.buckets.size;
  }

  private evict(now: number): void {
    for (const [who, b] of this.buckets)
      if (b.tokens + ((now - b.at) / 1000) * this.perSecond >= this.burst) this.buckets.delete(who);
    for (const who of this.buckets.keys()) {
      if (this.buckets.size < MAX_BUCKETS) break;
      this.buckets.delete(who);
    }
  }
}

function clientAddress(c: Context): string {
  try {
    return getConnInfo(c).remote.address ?? "unknown";
  } catch {
    // app.request() in tests has no socket.
    return "unknown";
  }
}

/**
 * 429 `rate_limited` with Retry-After past the limit; attached to every route but the open ones (health, docs). Runs after authentication: the bucket is the key's
 * id ("admin" for the admin key), or the client address when auth is off.
 */
export function rateLimit(limiter: RateLimiter, authEnabled: boolean): MiddlewareHandler {
  return async (c, next) => {
    const p = c.get("principal");
    const who = authEnabled && p ? (p.keyId ?? "admin") : `ip:${clientAddress(c)}`;
    const wait = limiter.take(who);
    if (wait > 0)
      throw new ApiError(
        "rate_limited",
        `more than ${limiter.perSecond} requests per second (burst ${limiter.burst}); retry in ${wait} s`,
        undefined,
        { "retry-after": String(wait) },
      );
    return next();
  };
}
