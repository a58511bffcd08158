import { describe, expect, it } from "vitest";
import { FairShare } from "../worker/fair-share.ts";

/** Runs `rounds` of: allocate `slots` among the claims, start and finish each job at `tokens` tokens. */
function serve(
  fair: FairShare,
  claims: { owner: string; weight: number; pending: number }[],
  rounds: number,
  slots: number,
  tokensOf: (owner: string) => number,
  start = 0,
): Record<string, { jobs: number; tokens: number }> {
  const out: Record<string, { jobs: number; tokens: number }> = {};
  let now = start;
  for (let r = 0; r < rounds; r++) {
    now += 100;
    const given = fair.allocate(slots, claims, now);
    const started = [...given].flatMap(([owner, n]) => Array.from({ length: n }, () => ({ owner, est: fair.begin(owner) })));
    for (const { owner, est } of started) {
      const tokens = tokensOf(owner);
      fair.end(owner, est, tokens, now + 50);
      const o = out[owner] ?? { jobs: 0, tokens: 0 };
      out[owner] = o;
      o.jobs++;
      o.tokens += tokens;
      const claim = claims.find((c) => c.owner === owner);
      if (claim) claim.pending--;
    }
  }
  return out;
}

describe("fair shares between keys", () => {
  it("a key with a long backlog does not hold back a key that queues a few jobs after it", () => {
    const fair = new FairShare();
    const a = { owner: "key_a", weight: 1, pending: 2_000 };
    serve(fair, [a], 20, 4, () => 300);
    const b = { owner: "key_b", weight: 1, pending: 20 };
    const served = serve(fair, [a, b], 5, 4, () => 300, 2_000);
    // Equal weights, equal jobs: half of each round's slots go to B from its first round on.
    expect(served.key_b?.jobs).toBe(10);
    expect(served.key_a?.jobs).toBe(10);
  });

  it("shares tokens, not jobs: a key with jobs 4x as long gets a quarter as many", () => {
    const fair = new FairShare();
    const claims = [
      { owner: "long", weight: 1, pending: 10_000 },
      { owner: "short", weight: 1, pending: 10_000 },
    ];
    const served = serve(fair, claims, 400, 4, (o) => (o === "long" ? 800 : 200));
    const ratio = (served.long?.tokens ?? 0) / (served.short?.tokens ?? 1);
    expect(ratio).toBeGreaterThan(0.85);
    expect(ratio).toBeLessThan(1.15);
    expect(served.short?.jobs).toBeGreaterThan(3 * (served.long?.jobs ?? 0));
  });

  it("weights: a key of weight 2 gets twice the tokens of a key of weight 1", () => {
    const fair = new FairShare();
    const claims = [
      { owner: "heavy", weight: 2, pending: 10_000 },
      { owner: "light", weight: 1, pending: 10_000 },
    ];
    const served = serve(fair, claims, 300, 3, () => 250);
    const ratio = (served.heavy?.tokens ?? 0) / (served.light?.tokens ?? 1);
    expect(ratio).toBeGreaterThan(1.8);
    expect(ratio).toBeLessThan(2.2);
  });

  it("a key back from idle starts level with the busy keys: it gets its share, not a burst for its idle time", () => {
    const fair = new FairShare(60_000, 0);
    const a = { owner: "a", weight: 1, pending: 10_000 };
    const b = { owner: "b", weight: 1, pending: 0 };
    serve(fair, [a, b], 50, 4, () => 300);
    b.pending = 10_000;
    const next = serve(fair, [a, b], 10, 4, () => 300, 5_000);
    // Without levelling, B (0 tokens served) would take every slot until it caught up with A's 60,000.
    expect(next.b?.jobs).toBeLessThanOrEqual(24);
    expect(next.a?.jobs).toBeGreaterThanOrEqual(16);
  });

  it("never gives a key more slots than it has jobs queued, and leaves the rest free when nobody has any", () => {
    const fair = new FairShare();
    const given = fair.allocate(8, [
      { owner: "a", weight: 1, pending: 2 },
      { owner: "b", weight: 5, pending: 1 },
      { owner: "c", weight: 1, pending: 0 },
    ]);
    expect(Object.fromEntries(given)).toEqual({ a: 2, b: 1 });
    expect(fair.allocate(4, []).size).toBe(0);
  });

  it("forgets: service decays with the half-life", () => {
    const fair = new FairShare(1_000, 0);
    const est = fair.begin("a");
    fair.end("a", est, 1_000, 0);
    expect(fair.service(0).a).toBe(1_000);
    expect(fair.service(1_000).a).toBe(500);
    expect(fair.service(2_000).a).toBe(250);
  });
});
