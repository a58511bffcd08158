import { describe, expect, it } from "vitest";
import { SlotPool } from "../worker/slots.ts";

describe("SlotPool", () => {
  it("the batch lanes share the batch size; one more slot is kept for the interactive lane", () => {
    const pool = new SlotPool(4, 1);
    expect(pool.take("batch", 10)).toBe(4);
    expect(pool.take("default", 1)).toBe(0);
    for (let i = 0; i < 4; i++) pool.begin("batch");
    expect(pool.saturated).toBe(true);
    expect(pool.take("interactive", 5)).toBe(1);
    expect(pool.available("interactive")).toBe(0);
  });

  it("interactive jobs may also use free batch slots, which the batch lanes then cannot", () => {
    const pool = new SlotPool(2, 1);
    expect(pool.take("interactive", 2)).toBe(2);
    expect(pool.take("batch", 2)).toBe(1);
    expect(pool.available("interactive")).toBe(0);
  });

  it("slots held by pulls still waiting for a job do not make the batch look saturated (an idle worker measures nothing)", () => {
    const pool = new SlotPool(2, 1);
    expect(pool.take("batch", 1) + pool.take("default", 1)).toBe(2);
    expect(pool.saturated).toBe(false);
    pool.begin("batch");
    pool.begin("default");
    expect(pool.saturated).toBe(true);
    pool.finish("batch");
    expect(pool.saturated).toBe(false);
    expect(pool.available("batch")).toBe(1);
  });

  it("while an interactive job runs, the batch lanes start nothing new; they resume when it ends", () => {
    const pool = new SlotPool(4, 1);
    expect(pool.take("interactive", 1)).toBe(1);
    expect(pool.available("batch")).toBe(4); // an idle pull on the interactive lane blocks nothing
    pool.begin("interactive");
    expect(pool.available("batch")).toBe(0);
    expect(pool.take("default", 2)).toBe(0);
    pool.finish("interactive");
    expect(pool.take("default", 2)).toBe(2);
  });

  it("release wakes waiters", async () => {
    const pool = new SlotPool(2, 0);
    pool.take("batch", 2);
    const woken = pool.changed();
    pool.release("batch", 1);
    await woken;
    expect(pool.available("batch")).toBe(1);
  });

  it("idle resolves once every slot is back", async () => {
    const pool = new SlotPool(3);
    pool.take("batch", 2);
    let idle = false;
    const p = pool.idle().then(() => {
      idle = true;
    });
    pool.release("batch", 1);
    await Promise.resolve();
    expect(idle).toBe(false);
    pool.release("batch", 1);
    await p;
    expect(idle).toBe(true);
  });

  it("shrinking below the busy count lets no new batch work in until enough finishes", () => {
    const pool = new SlotPool(8, 1);
    expect(pool.take("batch", 6)).toBe(6);
    pool.resize(4);
    expect(pool.available("batch")).toBe(0);
    pool.release("batch", 3);
    expect(pool.available("batch")).toBe(1);
  });

  it("growing wakes waiters with the new slots", async () => {
    const pool = new SlotPool(1, 0);
    pool.take("batch", 1);
    const woken = pool.changed();
    pool.resize(4);
    await woken;
    expect(pool.take("batch", 10)).toBe(3);
  });
});
