import { describe, expect, it } from "vitest";
import { AdaptiveBatcher } from "../worker/batcher.ts";

/** Drives the batcher with a synthetic throughput curve, every window saturated (a backlog). */
function simulate(curve: (batch: number) => number, max: number, windows: number, options = {}) {
  let now = 0;
  const b = new AdaptiveBatcher({ max, windowMs: 1000, ...options }, now);
  const path: number[] = [b.current];
  for (let i = 0; i < windows; i++) {
    for (let s = 0; s < 4; s++) b.sample(true);
    b.addTokens(curve(b.current));
    now += 1000;
    b.tick(now);
    path.push(b.current);
  }
  return { batcher: b, path };
}

const bestOf = (curve: (b: number) => number, max: number) => Math.max(...Array.from({ length: max }, (_, i) => curve(i + 1)));

describe("AdaptiveBatcher", () => {
  const curves: Record<string, (b: number) => number> = {
    "saturating (dense model on a GPU)": (b) => (400 * b) / (1 + b / 6),
    "peaked at 12 (memory-bound beyond)": (b) => 100 * b * Math.exp(-b / 12),
    "flat (one CPU core)": () => 500,
    "falling (hybrid model that batches badly)": (b) => 600 / (1 + 0.3 * (b - 1)),
  };
  for (const [name, curve] of Object.entries(curves)) {
    it(`reaches ≥95% of the best fixed batch's throughput on a ${name} curve`, () => {
      const { batcher, path } = simulate(curve, 32, 40);
      expect(curve(batcher.current) / bestOf(curve, 32), `path ${path.join("→")}`).toBeGreaterThanOrEqual(0.95);
    });
  }

  it("learns nothing from the first saturated window, which runs on a cold engine", () => {
    const b = new AdaptiveBatcher({ max: 32, windowMs: 1000 }, 0);
    for (let i = 0; i < 4; i++) b.sample(true);
    b.addTokens(100);
    expect(b.tick(1000)).toBeUndefined();
    expect(b.status().measured).toEqual({});
    for (let i = 0; i < 4; i++) b.sample(true);
    b.addTokens(100);
    b.tick(2000);
    expect(b.status().measured).toEqual({ 1: 100 });
  });

  it("learns nothing from windows that did not run saturated", () => {
    const b = new AdaptiveBatcher({ max: 32, windowMs: 1000 }, 0);
    b.sample(false);
    b.addTokens(100);
    expect(b.tick(1000)).toBeUndefined();
    expect(b.current).toBe(1);
    expect(b.status().measured).toEqual({});
  });

  it("cuts the batch when p95 job latency is over target", () => {
    const b = new AdaptiveBatcher({ max: 32, initial: 16, windowMs: 1000, latencyTargetMs: 5000 }, 0);
    for (let i = 0; i < 4; i++) b.sample(true);
    expect(b.tick(1000)).toBeUndefined(); // the warm-up window teaches nothing
    for (let i = 0; i < 4; i++) b.sample(true);
    b.addTokens(1000);
    for (let i = 0; i < 20; i++) b.addJob(9000);
    const d = b.tick(2000);
    expect(d?.limit).toBe(12);
    expect(d?.reason).toMatch(/latency/);
  });

  it("halves the batch and lowers its ceiling when the engine fails under load", () => {
    const b = new AdaptiveBatcher({ max: 32, initial: 16 }, 0);
    expect(b.engineFailed(0)?.limit).toBe(8);
    const { batcher } = { batcher: b };
    let now = 0;
    for (let i = 0; i < 30; i++) {
      for (let s = 0; s < 4; s++) batcher.sample(true);
      batcher.addTokens(100 * batcher.current);
      now += 2000;
      batcher.tick(now);
    }
    expect(batcher.current).toBeLessThanOrEqual(15);
  });

  it("neither decides, probes nor logs while nothing waits, and a new backlog starts from the last good size", () => {
    const curve = (b: number) => 100 * b * Math.exp(-b / 6);
    let now = 0;
    const b = new AdaptiveBatcher({ max: 32, windowMs: 1000 }, now);
    const window = (saturated: boolean) => {
      for (let s = 0; s < 4; s++) b.sample(saturated);
      if (saturated) b.addTokens(curve(b.current));
      now += 1000;
      return b.tick(now);
    };
    for (let i = 0; i < 40; i++) window(true);
    const settled = b.current;
    expect(b.status().phase).toBe("settled");
    for (let i = 0; i < 200; i++) expect(window(false)).toBeUndefined();
    expect(b.current).toBe(settled);
    // The backlog's first window is a transition (slots filling): it is skipped, and the size holds.
    expect(window(true)).toBeUndefined();
    expect(window(true)).toBeUndefined();
    expect(b.current).toBe(settled);
  });

  it("on a flat curve with ±10% noise it settles and stays: no flipping between sizes that measure alike", () => {
    let seed = 11;
    const noise = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return 0.9 + (seed / 2 ** 31) * 0.2;
    };
    const { path } = simulate(() => 500 * noise(), 32, 80);
    const late = path.slice(20);
    const changes = late.filter((size, i) => i > 0 && size !== late[i - 1]).length;
    // 60 windows at probeEvery 30: two probes at most, each going up and coming back.
    expect(changes, `path ${path.join("→")}`).toBeLessThanOrEqual(4);
  });

  it("holds its size under ±5% measurement noise: only the rare probe moves it", () => {
    let seed = 7;
    const noise = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return 0.95 + (seed / 2 ** 31) * 0.1;
    };
    const curve = (b: number) => 100 * b * Math.exp(-b / 6);
    const { path } = simulate((x) => curve(x) * noise(), 32, 160);
    const changes = path.slice(40).filter((size, i, rest) => i > 0 && size !== rest[i - 1]).length;
    // 120 windows at probeEvery 30: at most four probes, each going up and coming back.
    expect(changes, `path ${path.join("→")}`).toBeLessThanOrEqual(8);
  });
});
