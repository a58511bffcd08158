import { z } from "zod";

/** What a worker puts under workers.<id> in the docket-control KV bucket every few seconds. */
export const WorkerHeartbeat = z.object({
  v: z.literal(1),
  id: z.string(),
  /**
   * The model name it serves (DOCKET_MODEL_NAME, or derived from the model file): jobs naming it are routed to it.
   * Workers from before model names sent the GGUF's general.name here; readers compare it through toModelName.
   */
  model: z.string(),
  /** It also takes the jobs that name no model (DOCKET_DEFAULT_MODEL unset or naming its model). Absent: it does. */
  default: z.boolean().optional(),
  /** The model it runs, when that is not `model`'s file: the fallback of the degradation ladder. */
  loaded: z.string().optional(),
  /** Sequences the worker decodes together now (the batcher's choice). */
  batchSize: z.number().int().min(0),
  /** Sequences its context holds: the most batchSize can be. */
  sequences: z.number().int().min(0),
  /** Jobs it is running now. */
  running: z.number().int().min(0),
  /** Aggregate generated tokens per second, as the worker last measured it. */
  tokensPerSecond: z.number().min(0),
  /** Document-prefix reuse since start: lookups, those served from a live sequence or a checkpoint, tokens saved. */
  prefix: z
    .object({
      lookups: z.number().int().min(0),
      hits: z.number().int().min(0),
      tokensSaved: z.number().int().min(0),
    })
    .optional(),
  /**
   * SHA-256 of the documents whose jobs it finished lately, newest first (at most DOCUMENTS_IN_HEARTBEAT): it holds
   * their evaluated prefix, live or as a checkpoint, so the producer routes their next tasks to it (docs/prefix-reuse.md).
   */
  documents: z.array(z.string()).optional(),
  /** Jobs routed to it (its docket-at consumers) still queued. */
  routed: z.number().int().min(0).optional(),
  /** Where its /metrics endpoint listens, when it has one. */
  metricsUrl: z.string().optional(),
  startedAt: z.string(),
  at: z.string(),
});
export type WorkerHeartbeat = z.infer<typeof WorkerHeartbeat>;

/** The most document hashes a heartbeat lists. */
export const DOCUMENTS_IN_HEARTBEAT = 64;

/** A heartbeat is fresh for this long; a worker that missed three is shown as gone. */
export const HEARTBEAT_INTERVAL_MS = 5_000;
export const HEARTBEAT_STALE_MS = 3 * HEARTBEAT_INTERVAL_MS;

/** Whether a heartbeat is fresh: its worker is taken to be alive. */
export const isFresh = (hb: Pick<WorkerHeartbeat, "at">, now = Date.now()): boolean =>
  now - Date.parse(hb.at) < HEARTBEAT_STALE_MS;
