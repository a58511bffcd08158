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
  job: (lane: Lane, task: Task) => `docket.jobs.${lane}.${task}`,
  lane: (lane: Lane) => `docket.jobs.${lane}.>`,
  event: (jobId: string, kind: EventKind) => `docket.events.${jobId}.${kind}`,
  jobEvents: (jobId: string) => `docket.events.${jobId}.>`,
};

export const workerConsumer = (lane: Lane) => `docket-workers-${lane}`;

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
