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
