import type { BatchItem, EvaluationPriority, Token } from "node-llama-cpp";
import { describe, expect, it } from "vitest";
import {
  LockGate,
  lockstep,
  noDecodeSteps,
  PEOPLE_ABOUT_MS,
  StepBudget,
  URGENT_BATCH_EVERY_MS,
  URGENT_PRIORITY,
  urgentFirst,
} from "../worker/batch-priority.ts";

const item = (tokens: number, evaluationPriority: EvaluationPriority): BatchItem => ({
  tokens: Array.from({ length: tokens }, (_, i) => i as Token),
  logits: [],
  evaluationPriority,
});

describe("decode-step prioritization", () => {
  it("a step holds only the interactive job's tokens while it has any queued; batch sequences wait", () => {
    const batch = [item(1, 3), item(1, 3), item(1, 3)];
    const interactive = item(1, 5);
    const chosen = urgentFirst()({ items: [...batch, interactive], size: 512 });
    expect(chosen).toEqual([{ item: interactive, processAmount: 1 }]);
  });

  it("without interactive tokens every sequence shares the step, and nothing queued is left out", () => {
    const items = [item(1, 3), item(300, 3), item(400, 3)];
    const chosen = urgentFirst()({ items, size: 512 });
    expect(chosen.map((c) => c.item)).toEqual(items);
    expect(chosen.reduce((n, c) => n + c.processAmount, 0)).toBe(512);
    expect(chosen[0]?.processAmount).toBe(1);
  });

  it("between two steps of a running interactive job, batch sequences advance one token each", () => {
    const items = [item(1, 3), item(400, 3)];
    expect(urgentFirst(() => true)({ items, size: 512 }).map((c) => c.processAmount)).toEqual([1, 1]);
  });

  it("a step of batch work holds at most stepTokens tokens (every sequence still gets one); an interactive prompt is not capped", () => {
    const items = [item(1, 3), item(1, 3), item(700, 3)];
    const chosen = urgentFirst(() => false, 128)({ items, size: 512 });
    expect(chosen.reduce((n, c) => n + c.processAmount, 0)).toBe(128);
    expect(chosen.map((c) => c.processAmount)).toEqual([1, 1, 126]);
    const many = Array.from({ length: 200 }, () => item(1, 3));
    expect(urgentFirst(() => false, 128)({ items: many, size: 512 })).toHaveLength(200);
    const prompt = item(900, 5);
    expect(urgentFirst(() => false, 128)({ items: [item(400, 3), prompt], size: 512 })).toEqual([
      { item: prompt, processAmount: 512 },
    ]);
  });

  it("while people's jobs are about, a batch step holds at most the time budget's worth of prompt tokens, measured", () => {
    let clock = 0;
    const budget = new StepBudget(100, () => clock);
    const step = urgentFirst(() => false, undefined, budget);
    const prompts = () => [item(1, 3), item(2000, 3), item(2000, 3)];
    const tokens = (out: { processAmount: number }[]) => out.reduce((n, c) => n + c.processAmount, 0);
    // Nobody about: whole steps, each taking 1 s (2 ms a token), which measures the cost of a token.
    for (let i = 0; i < 4; i++) {
      expect(tokens(step({ items: prompts(), size: 512 }))).toBe(512);
      clock += 1_024;
    }
    expect(budget.limit()).toBeUndefined();
    // A person's job: its prompt step, then batch steps of 100 ms at 2 ms a token, every sequence still served.
    const person = item(300, URGENT_PRIORITY as EvaluationPriority);
    expect(step({ items: [...prompts(), person], size: 512 })).toEqual([{ item: person, processAmount: 300 }]);
    // Its step took 600 ms, then the worker sat idle for 30 s: one slow reading, which the median passes over.
    clock += 30_600;
    const capped = step({ items: prompts(), size: 512 });
    expect(tokens(capped)).toBe(50);
    expect(capped).toHaveLength(3);
    // A minute without a person's job: whole steps again.
    clock += PEOPLE_ABOUT_MS + 1;
    expect(tokens(step({ items: prompts(), size: 512 }))).toBe(512);
  });

  it("the time budget is off at 0 ms and never caps a person's own prompt", () => {
    let clock = 0;
    const off = new StepBudget(0, () => clock);
    const budget = new StepBudget(10, () => clock);
    for (const b of [off, budget]) {
      const step = urgentFirst(() => false, undefined, b);
      for (let i = 0; i < 4; i++) {
        step({ items: [item(900, 5)], size: 512 });
        clock += 512;
      }
    }
    expect(off.limit()).toBeUndefined();
    expect(budget.limit()).toBe(10);
    const person = item(900, 5);
    expect(urgentFirst(() => false, undefined, budget)({ items: [item(400, 3), person], size: 512 })).toEqual([
      { item: person, processAmount: 512 },
    ]);
  });

  it("an interactive prompt longer than a step fills the step with its own tokens", () => {
    const prompt = item(900, 5);
    expect(urgentFirst()({ items: [item(1, 3), prompt], size: 512 })).toEqual([{ item: prompt, processAmount: 512 }]);
  });

  it("lockstep: a step with fewer sequences than the last is put off (empty) until they are back or the wait ends; newcomers never wait", async () => {
    const stats = noDecodeSteps();
    const step = lockstep(urgentFirst(), stats, 20);
    const four = [item(1, 3), item(1, 3), item(1, 3), item(1, 3)];
    expect(step({ items: four, size: 512 })).toHaveLength(4);
    // One sequence has not queued its next token yet: no step.
    expect(step({ items: four.slice(0, 3), size: 512 })).toEqual([]);
    expect(step({ items: four, size: 512 })).toHaveLength(4);
    expect(stats).toMatchObject({ steps: 2, items: 8, waits: 1 });
    // A sequence whose job ended does not come back: after the wait, the step runs with the others.
    expect(step({ items: four.slice(0, 3), size: 512 })).toEqual([]);
    await new Promise((r) => setTimeout(r, 25));
    // Past the wait, the put-off step still gets its minimum of empty rounds (a preempted process's clock jumps).
    let rounds = 1;
    while (step({ items: four.slice(0, 3), size: 512 }).length === 0) rounds++;
    expect(rounds).toBeGreaterThan(8);
    expect(rounds).toBeLessThanOrEqual(40);
    expect(step({ items: four.slice(0, 3), size: 512 })).toHaveLength(3);
    expect(step({ items: [...four, item(1, 3)], size: 512 })).toHaveLength(5);
    expect(stats.waits).toBe(2);
    // Off (0 ms): never waits.
    const off = lockstep(urgentFirst(), undefined, 0);
    off({ items: four, size: 512 });
    expect(off({ items: four.slice(0, 1), size: 512 })).toHaveLength(1);
  });

  it("while an interactive job runs, the batch sequences wait out its sampling instead of running a step it would wait for", async () => {
    let running = true;
    const step = lockstep(
      urgentFirst(() => running),
      noDecodeSteps(),
      20,
      () => running,
    );
    const batch = [item(1, 3), item(1, 3)];
    const urgent = item(1, URGENT_PRIORITY);
    expect(step({ items: [...batch, urgent], size: 512 })).toEqual([{ item: urgent, processAmount: 1 }]);
    // It is sampling: the batch step is put off, and the interactive token goes next.
    expect(step({ items: batch, size: 512 })).toEqual([]);
    expect(step({ items: [...batch, urgent], size: 512 })).toEqual([{ item: urgent, processAmount: 1 }]);
    // Not back within the wait: the batch sequences advance one token each.
    await new Promise((r) => setTimeout(r, 25));
    let out = step({ items: batch, size: 512 });
    while (out.length === 0) out = step({ items: batch, size: 512 });
    expect(out.map((p) => p.processAmount)).toEqual([1, 1]);
    // The batch has waited URGENT_BATCH_EVERY_MS since its last step: it gets one, interactive job or not.
    step({ items: [...batch, urgent], size: 512 });
    await new Promise((r) => setTimeout(r, URGENT_BATCH_EVERY_MS + 5));
    expect(step({ items: batch, size: 512 })).toHaveLength(2);
    // No interactive job running: nothing is held.
    running = false;
    step({ items: [...batch, urgent], size: 512 });
    expect(step({ items: batch, size: 512 })).toHaveLength(2);
  });

  it("a lock gate skips one step for a waiting operation, sets the queue aside so the loop ends, and puts it back", async () => {
    const scheduled: number[] = [];
    const context = {
      _queuedDecodes: ["a", "b"] as unknown[],
      _scheduleDecode: () => scheduled.push(context._queuedDecodes.length),
    };
    const gate = new LockGate().attach(context);
    const step = lockstep(urgentFirst(), noDecodeSteps(), 0, undefined, gate);
    const two = [item(1, 3), item(1, 3)];
    expect(step({ items: two, size: 512 })).toHaveLength(2);
    let release!: () => void;
    const op = gate.run(() => new Promise<void>((r) => (release = r)));
    expect(step({ items: two, size: 512 })).toEqual([]);
    expect(context._queuedDecodes).toEqual([]);
    await new Promise((r) => setImmediate(r));
    expect(context._queuedDecodes).toEqual(["a", "b"]);
    expect(scheduled).toEqual([2]);
    // At most twice per operation, then steps run although it has not finished.
    expect(step({ items: two, size: 512 })).toEqual([]);
    await new Promise((r) => setImmediate(r));
    expect(step({ items: two, size: 512 })).toHaveLength(2);
    release();
    await op;
    expect(step({ items: two, size: 512 })).toHaveLength(2);
    expect(gate.yielded).toBe(2);
    // Without node-llama-cpp's decode queue (another version), the gate never skips a step.
    const inert = new LockGate().attach({});
    void inert.run(() => new Promise(() => undefined));
    expect(inert.yieldStep()).toBe(false);
  });
});
