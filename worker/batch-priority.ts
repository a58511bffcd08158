import type { BatchItem, CustomBatchingPrioritizationStrategy, PrioritizedBatchItem } from "node-llama-cpp";

/** The evaluation priority of a job a person waits for (the interactive lane): Engine.generate sets it. */
export const URGENT_PRIORITY = 5;

/**
 * Which queued tokens go into the next decode step (node-llama-cpp's batching.itemPrioritizationStrategy).
 * While any sequence of an interactive job has tokens queued, the step holds only those: the batch lanes'
 * sequences wait a step instead of sharing it. node-llama-cpp's own strategies only order by priority, and
 * when one step fits everything (it usually does: 512 tokens) the interactive job's every token still pays
 * for the whole batch's tokens. On hardware where a step costs in proportion to its tokens (a CPU; a GPU
 * past its batching sweet spot) that made an interactive job 2-3x slower under load (issue 9). The batch
 * sequences still advance one token a step between the interactive job's steps (it samples in between),
 * and at full speed once it ends. Otherwise: every item gets an equal share of the step, what is left goes to the
 * higher priorities first (node-llama-cpp's "maximumParallelism").
 */
export function urgentFirst(urgentRunning: () => boolean = () => false): CustomBatchingPrioritizationStrategy {
  return ({ items, size }) => {
    const urgent = items.filter((i) => i.evaluationPriority >= URGENT_PRIORITY);
    if (urgent.length > 0) return shareFairly(urgent, size);
    // Between two steps of an interactive job (it is sampling), the batch sequences go on one token each:
    // a step with a batch job's 512-token prompt chunk would hold up the interactive job's next token.
    if (urgentRunning()) return items.map((item) => ({ item, processAmount: 1 }));
    return shareFairly(items, size);
  };
}

function shareFairly(items: readonly BatchItem[], size: number): PrioritizedBatchItem[] {
  const share = Math.max(1, Math.floor(size / items.length));
  let left = size;
  const out: PrioritizedBatchItem[] = [];
  for (const item of items) {
    if (left <= 0) break;
    const processAmount = Math.min(item.tokens.length, share, left);
    out.push({ item, processAmount });
    left -= processAmount;
  }
  for (const p of [...out].sort((a, b) => b.item.evaluationPriority - a.item.evaluationPriority)) {
    if (left <= 0) break;
    const more = Math.min(p.item.tokens.length - p.processAmount, left);
    p.processAmount += more;
    left -= more;
  }
  return out;
}
