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
});
