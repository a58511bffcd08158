import { z } from "zod";

/**
 * Where queued work stands in its lane's line (fair shares between keys, FIFO within a key; the lanes served before
 * it count too), and
 * when it should start and finish at the throughput the workers report. Estimates are null while no worker has
 * measured a throughput.
 */
export const QueueEstimate = z.object({
  /**
   * 1: next in its lane. In the default and batch lanes, shared fairly between API keys, the jobs ahead count its
   * own key's jobs ahead of it and the part of other keys' queued work that their shares serve meanwhile. A batch's:
   * its first queued job's.
   */
  position: z.number().int().min(1),
  /** 1: its key's next job in the lane (its key's jobs with a deadline go first in the shared lanes). */
  keyPosition: z.number().int().min(1),
  /** Queued jobs ahead of it in its lane, and their estimated tokens (prompt ~ document bytes / 4, plus maxTokens). */
  ahead: z.object({ jobs: z.number().int().min(0), tokens: z.number().int().min(0) }),
  estimatedStartAt: z.string().nullable(),
  /** A batch's: when its last queued job should finish. */
  estimatedFinishAt: z.string().nullable(),
  /** The workers' aggregate generated tokens per second the estimate used. */
  tokensPerSecond: z.number().nullable(),
});
export type QueueEstimate = z.infer<typeof QueueEstimate>;
