import type { BatchItem, EvaluationPriority, Token } from "node-llama-cpp";
import { describe, expect, it } from "vitest";
import { urgentFirst } from "../worker/batch-priority.ts";

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

  it("an interactive prompt longer than a step fills the step with its own tokens", () => {
    const prompt = item(900, 5);
    expect(urgentFirst()({ items: [item(1, 3), prompt], size: 512 })).toEqual([{ item: prompt, processAmount: 512 }]);
  });
});
