/** JetStream names and subject builders: the contract between producer, workers and any other NATS client. */

export const LANES = ["interactive", "default", "batch"] as const;
export type Lane = (typeof LANES)[number];

/**
 * The lanes shared fairly between API keys: a key's jobs there travel on its own subject and consumer, and workers
 * serve the key that has had the fewest tokens lately (worker/fair-share.ts). The interactive lane keeps one consumer
 * per model: its reserved sequence holds one waiting pull, so a person's job starts at once, and per-key rate limits
 * bound it (docs/scheduling.md).
 */
export const SHARED_LANES: readonly Lane[] = ["default", "batch"];

/** An owner (API key id) as a subject token and consumer-name part: letters, digits and '_'. */
export const isShareKey = (key: string): boolean => /^[A-Za-z0-9_]{1,64}$/.test(key);

/** The model token of a share subject for the jobs naming no model (or the deployment's default model). */
export const DEFAULT_MODEL_TOKEN = "_";

export const TASKS = ["summarize", "extract", "classify", "ask", "chat"] as const;
export type Task = (typeof TASKS)[number];

export const JOBS_STREAM = "DOCKET_JOBS";
export const EVENTS_STREAM = "DOCKET_EVENTS";
export const DOCS_BUCKET = "docket-docs";
/** Object store of document-prefix checkpoints shared between workers (worker/prefix-share.ts). */
export const PREFIX_BUCKET = "docket-prefix";
/** How long a shared checkpoint is kept. */
export const PREFIX_TTL_MS = 6 * 60 * 60 * 1000;
export const CONTROL_BUCKET = "docket-control";
export const RECORDER_CONSUMER = "docket-recorder";

/**
 * `retried`: the producer put a failed or expired job back in the queue (POST .../retry); its attempt is the first of the
 * new run.
 */
export const EVENT_KINDS = ["started", "progress", "completed", "failed", "cancelled", "retried"] as const;
export type EventKind = (typeof EVENT_KINDS)[number];

export const subjects = {
  allJobs: "docket.jobs.>",
  allEvents: "docket.events.>",
  /**
   * Where a job is published: docket.jobs.<lane>.<task> for the default model (as before models had names),
   * docket.jobs.<lane>.<task>.<model> for a job naming a model (schema/model.ts: a valid subject token).
   */
  job: (lane: Lane, task: Task, model?: string) =>
    model ? `docket.jobs.${lane}.${task}.${model}` : `docket.jobs.${lane}.${task}`,
  /**
   * Where a job submitted with API key `owner` is published in a shared lane:
   * docket.jobs.<lane>.<task>.<model, or _ for the default model>.<owner>. Six tokens, so it matches neither
   * docket-workers filter (four and five tokens).
   */
  sharedJob: (lane: Lane, task: Task, model: string | undefined, owner: string, due = false) =>
    `docket.jobs.${lane}.${task}.${model ?? DEFAULT_MODEL_TOKEN}.${owner}${due ? ".due" : ""}`,
  /**
   * One key's jobs on one model in a lane: the filter of its docket-share consumer; `due`: those with a deadline,
   * which end in a seventh token, `due`, and wait on its docket-due consumer (served first within the key's share).
   */
  ownerJobs: (lane: Lane, model: string | undefined, owner: string, due = false) =>
    `docket.jobs.${lane}.*.${model ?? DEFAULT_MODEL_TOKEN}.${owner}${due ? ".due" : ""}`,
  /** A lane's jobs that name no model: the filter of docket-workers-<lane>. */
  defaultModelJobs: (lane: Lane) => `docket.jobs.${lane}.*`,
  /** A lane's jobs naming `model`: the filter of docket-workers-<lane>-<model>. */
  modelJobs: (lane: Lane, model: string) => `docket.jobs.${lane}.*.${model}`,
  /**
   * A job routed to the worker that holds its document's prefix (docs/prefix-reuse.md): eight tokens,
   * docket.jobs.<lane>.<task>.<model or _>.<key or _>.at.<worker token>, read by docket-at-<lane>-<worker token>.
   */
  routedJob: (lane: Lane, task: Task, model: string | undefined, owner: string | undefined, worker: string) =>
    `docket.jobs.${lane}.${task}.${model ?? DEFAULT_MODEL_TOKEN}.${owner ?? DEFAULT_MODEL_TOKEN}.at.${worker}`,
  /** A lane's jobs routed to one worker: the filter of its docket-at consumer. */
  routedJobs: (lane: Lane, worker: string) => `docket.jobs.${lane}.*.*.*.at.${worker}`,
  event: (jobId: string, kind: EventKind) => `docket.events.${jobId}.${kind}`,
  jobEvents: (jobId: string) => `docket.events.${jobId}.>`,
};

/**
 * The durable consumer workers pull a lane from: docket-workers-<lane> for jobs naming no model (provisioned),
 * docket-workers-<lane>-<model> for jobs naming `model` (created by the first worker serving it). Their filters
 * never overlap, as a WorkQueue stream requires.
 */
export const workerConsumer = (lane: Lane, model?: string) =>
  model ? `docket-workers-${lane}-${model}` : `docket-workers-${lane}`;

/**
 * The consumer of one API key's jobs on one model in a shared lane: docket-share-<lane>-<key> for the default
 * model, docket-share-<lane>-<key>-<model> for a named one (a key has no '-'); docket-due-… for its jobs with a
 * deadline. The producer creates it before it publishes the key's first such job there.
 */
export const shareConsumer = (lane: Lane, owner: string, model?: string, due = false) =>
  `docket-${due ? "due" : "share"}-${lane}-${owner}${model ? `-${model}` : ""}`;

const SHARE_NAME = /^docket-(share|due)-(interactive|default|batch)-([A-Za-z0-9_]+)(?:-(.+))?$/;

/** The consumer of a lane's jobs routed to one worker (its token: workerToken), made by the producer. */
export const routedConsumer = (lane: Lane, worker: string) => `docket-at-${lane}-${worker}`;

const ROUTED_NAME = /^docket-at-(interactive|default|batch)-(.+)$/;

/**
 * The lane and model a worker consumer serves, from its name, and for a docket-share (or docket-due) consumer the
 * key whose jobs it holds (and whether they have deadlines); undefined for any other consumer.
 */
export function workerConsumerOf(
  name: string,
): { lane: Lane; model?: string; owner?: string; due?: boolean; worker?: string } | undefined {
  const routed = ROUTED_NAME.exec(name);
  if (routed) return { lane: routed[1] as Lane, worker: routed[2] as string };
  const share = SHARE_NAME.exec(name);
  if (share) {
    const [, kind, lane, owner, model] = share as unknown as [string, string, Lane, string, string | undefined];
    return { lane, owner, ...(model ? { model } : {}), ...(kind === "due" ? { due: true } : {}) };
  }
  for (const lane of LANES) {
    const base = workerConsumer(lane);
    if (name === base) return { lane };
    if (name.startsWith(`${base}-`)) return { lane, model: name.slice(base.length + 1) };
  }
  return undefined;
}

/**
 * KV key under which a job's cancel flag is set in the docket-control bucket. Its value is the time it was set
 * (any value cancels the job), or, once the job was retried, `{"beforeAttempt": n}`: only its earlier runs'
 * messages are cancelled (one still queued is skipped), the run from attempt n on is not.
 */
export const cancelKey = (jobId: string) => `cancel.${jobId}`;

/** The value of a cancel flag that cancels only a job's runs before `attempt` (set when the job is retried). */
export const retriedFlag = (attempt: number) => JSON.stringify({ beforeAttempt: attempt });

/** Whether a cancel flag's value cancels `attempt`: every attempt, unless it is a retried flag for a later run. */
export function flagCancels(value: string, attempt: number): boolean {
  try {
    const before = (JSON.parse(value) as { beforeAttempt?: unknown } | null)?.beforeAttempt;
    if (typeof before === "number") return attempt < before;
  } catch {
    // A timestamp, or anything else another client put: a cancel.
  }
  return true;
}

/** A worker id as one subject token and consumer-name part: what its KV key and its routed jobs' subject carry. */
export const workerToken = (workerId: string) => workerId.replace(/[^-_a-zA-Z0-9]/g, "_");

/** KV key in docket-control under which a worker publishes its heartbeat (schema/heartbeat.ts). */
export const workerKey = (workerId: string) => `workers.${workerToken(workerId)}`;
export const WORKER_KEYS = "workers.>";
