import { describe, expect, it } from "vitest";
import { RateLimiter } from "../producer/rate-limit.ts";

describe("RateLimiter (token bucket)", () => {
  it("allows a burst, then one request per 1/rate seconds, and says how long to wait", () => {
    const l = new RateLimiter(2, 3);
    const t = 1_000_000;
    expect([l.take("a", t), l.take("a", t), l.take("a", t)]).toEqual([0, 0, 0]);
    expect(l.take("a", t)).toBe(1);
    expect(l.take("a", t + 499)).toBe(1);
    expect(l.take("a", t + 500)).toBe(0);
    expect(l.take("a", t + 500)).toBe(1);
  });

  it("keeps one bucket per caller: one caller's burst does not limit another", () => {
    const l = new RateLimiter(1, 1);
    expect(l.take("a", 0)).toBe(0);
    expect(l.take("a", 0)).toBe(1);
    expect(l.take("b", 0)).toBe(0);
  });

  it("a slow rate gives a Retry-After of several seconds", () => {
    const l = new RateLimiter(0.25, 1);
    expect(l.take("a", 0)).toBe(0);
    expect(l.take("a", 0)).toBe(4);
  });

  it("refills no further than the burst after a long idle", () => {
    const l = new RateLimiter(10, 2);
    l.take("a", 0);
    expect([l.take("a", 3_600_000), l.take("a", 3_600_000), l.take("a", 3_600_000)]).toEqual([0, 0, 1]);
  });

  it("holds a bounded number of buckets: idle callers are dropped first", () => {
    const l = new RateLimiter(1, 1);
    for (let i = 0; i < 10_000; i++) l.take(`ip:${i}`, 0);
    expect(l.size).toBe(10_000);
    l.take("new", 5_000);
    expect(l.size).toBeLessThanOrEqual(10_000);
    expect(l.take("new", 5_000)).toBe(1);
  });
});
