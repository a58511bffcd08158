import { describe, expect, it } from "vitest";
import { SlotPool } from "../worker/slots.ts";

describe("SlotPool", () => {
  it("keeps one slot for the interactive lane", () => {
    const pool = new SlotPool(4);
    expect(pool.take("batch", 10)).toBe(3);
    expect(pool.take("default", 1)).toBe(0);
    expect(pool.take("interactive", 5)).toBe(1);
    expect(pool.available).toBe(0);
  });

  it("a single-slot pool serves every lane", () => {
    const pool = new SlotPool(1);
    expect(pool.take("batch", 1)).toBe(1);
  });

  it("release wakes waiters and never exceeds the size", async () => {
    const pool = new SlotPool(2);
    pool.take("interactive", 2);
    const woken = pool.changed();
    pool.release(5);
    await woken;
    expect(pool.available).toBe(2);
  });

  it("idle resolves once every slot is back", async () => {
    const pool = new SlotPool(3);
    pool.take("interactive", 2);
    let idle = false;
    const p = pool.idle().then(() => {
      idle = true;
    });
    pool.release(1);
    await Promise.resolve();
    expect(idle).toBe(false);
    pool.release(1);
    await p;
    expect(idle).toBe(true);
  });
});

describe("SlotPool.resize", () => {
  it("shrinking below the busy count lets no new work in until enough finishes", () => {
    const pool = new SlotPool(8);
    expect(pool.take("interactive", 6)).toBe(6);
    pool.resize(4);
    expect(pool.available).toBe(0);
    expect(pool.take("interactive", 1)).toBe(0);
    pool.release(3);
    expect(pool.available).toBe(1);
    expect(pool.busy).toBe(3);
  });

  it("growing wakes waiters with the new slots", async () => {
    const pool = new SlotPool(1);
    pool.take("batch", 1);
    const woken = pool.changed();
    pool.resize(4);
    await woken;
    expect(pool.take("batch", 10)).toBe(2);
  });
});
