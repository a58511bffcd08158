/** JetStream names and subject builders: the contract between producer, workers and any other NATS client. */

export const LANES = ["interactive", "default", "batch"] as const;
export type Lane = (typeof LANES)[number];

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
  /** A lane's jobs that name no model: the filter of docket-workers-<lane>. */
  defaultModelJobs: (lane: Lane) => `docket.jobs.${lane}.*`,
  /** A lane's jobs naming `model`: the filter of docket-workers-<lane>-<model>. */
  modelJobs: (lane: Lane, model: string) => `docket.jobs.${lane}.*.${model}`,
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

/** The lane and model a worker consumer serves, from its name; undefined for any other consumer. */
export function workerConsumerOf(name: string): { lane: Lane; model?: string } | undefined {
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

/** KV key in docket-control under which a worker publishes its heartbeat (schema/heartbeat.ts). */
export const workerKey = (workerId: string) => `workers.${workerId.replace(/[^-/_=a-zA-Z0-9]/g, "_")}`;
export const WORKER_KEYS = "workers.>";
