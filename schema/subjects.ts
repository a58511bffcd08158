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

export const EVENT_KINDS = ["started", "progress", "completed", "failed", "cancelled"] as const;
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

/** KV key under which a job's cancel flag is set in the docket-control bucket. */
export const cancelKey = (jobId: string) => `cancel.${jobId}`;

/** KV key in docket-control under which a worker publishes its heartbeat (schema/heartbeat.ts). */
export const workerKey = (workerId: string) => `workers.${workerId.replace(/[^-/_=a-zA-Z0-9]/g, "_")}`;
export const WORKER_KEYS = "workers.>";
