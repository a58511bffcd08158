import {
  AckPolicy,
  type ConsumerConfig,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
} from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { Objm } from "@nats-io/obj";
import { type NatsConnection, nanos } from "@nats-io/transport-node";
import type { Config } from "../schema/config.ts";
import { isFresh } from "../schema/heartbeat.ts";
import {
  CONTROL_BUCKET,
  DOCS_BUCKET,
  EVENTS_STREAM,
  JOBS_STREAM,
  LANES,
  type Lane,
  PREFIX_BUCKET,
  PREFIX_TTL_MS,
  RECORDER_CONSUMER,
  routedConsumer,
  shareConsumer,
  subjects,
  workerConsumer,
  workerConsumerOf,
} from "../schema/subjects.ts";

export interface ProvisionOptions {
  /** Stream replicas: 1 for one server, 3 for a cluster. */
  replicas?: number;
  ackWaitSeconds?: number;
  maxDeliver?: number;
  eventsMaxAgeDays?: number;
  /** Most messages DOCKET_JOBS holds before publishes are refused (backpressure). -1: unlimited. */
  maxQueuedJobs?: number;
  /** Bytes the shared document-prefix checkpoints may take (DOCKET_PREFIX_SHARED_BYTES); 0: unlimited. */
  prefixBytes?: number;
  /**
   * Models whose per-lane consumers (docket-workers-<lane>-<model>) to create too: `npm run provision -- --model M`
   * for workers whose NATS user may not create them. Those that exist are updated whatever this says.
   */
  models?: string[];
}

/** Provisioning options from config: what the producer (DOCKET_PROVISION=auto) and `npm run provision` apply. */
export function provisionOptions(
  config: Pick<
    Config,
    | "DOCKET_REPLICAS"
    | "DOCKET_ACK_WAIT_SECONDS"
    | "DOCKET_MAX_DELIVER"
    | "DOCKET_EVENTS_MAX_AGE_DAYS"
    | "DOCKET_MAX_QUEUED_JOBS"
    | "DOCKET_PREFIX_SHARED_BYTES"
  >,
): ProvisionOptions {
  return {
    replicas: config.DOCKET_REPLICAS,
    maxQueuedJobs: config.DOCKET_MAX_QUEUED_JOBS,
    ackWaitSeconds: config.DOCKET_ACK_WAIT_SECONDS,
    maxDeliver: config.DOCKET_MAX_DELIVER,
    eventsMaxAgeDays: config.DOCKET_EVENTS_MAX_AGE_DAYS,
    prefixBytes: config.DOCKET_PREFIX_SHARED_BYTES,
  };
}

const HOUR = nanos(60 * 60 * 1000);

type NamedStreamConfig = Partial<StreamConfig> & { name: string };

export function streamConfigs(o: ProvisionOptions = {}): NamedStreamConfig[] {
  const replicas = o.replicas ?? 1;
  return [
    {
      name: JOBS_STREAM,
      subjects: [subjects.allJobs],
      retention: RetentionPolicy.Workqueue,
      storage: StorageType.File,
      discard: DiscardPolicy.New,
      max_msgs: o.maxQueuedJobs ?? -1,
      duplicate_window: HOUR,
      num_replicas: replicas,
    },
    {
      name: EVENTS_STREAM,
      subjects: [subjects.allEvents],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      max_age: nanos((o.eventsMaxAgeDays ?? 7) * 24 * 60 * 60 * 1000),
      duplicate_window: HOUR,
      num_replicas: replicas,
    },
  ];
}

/**
 * The consumer workers pull `lane` from: for jobs naming no model (`model` undefined) or naming `model`.
 * The default one's filter was docket.jobs.<lane>.> before models had names; provision() narrows it to
 * docket.jobs.<lane>.* (nats-server 2.9 updates a filter in place), else a model's consumer would overlap it.
 */
export function workerConsumerConfig(lane: Lane, model: string | undefined, o: ProvisionOptions = {}): Partial<ConsumerConfig> {
  return {
    durable_name: workerConsumer(lane, model),
    filter_subject: model ? subjects.modelJobs(lane, model) : subjects.defaultModelJobs(lane),
    ...jobConsumerSettings(o),
  };
}

/** What every consumer workers pull jobs from has in common. */
function jobConsumerSettings(o: ProvisionOptions): Partial<ConsumerConfig> {
  return {
    ack_policy: AckPolicy.Explicit,
    ack_wait: nanos((o.ackWaitSeconds ?? 60) * 1000),
    max_deliver: o.maxDeliver ?? 5,
    max_ack_pending: 10_000,
    // A model's consumer created after its jobs were published still gets them: WorkQueue keeps them until acked.
    deliver_policy: DeliverPolicy.All,
  };
}

/** The description of a docket-share consumer: the key's weight, which workers read from the consumer list. */
export const shareDescription = (weight: number): string => JSON.stringify({ weight });

/** The weight a docket-share consumer's description gives its key: 1 when it gives none (or nonsense). */
export function shareWeight(description: string | undefined): number {
  const weight = describedAs(description, "weight");
  return typeof weight === "number" && Number.isFinite(weight) && weight > 0 ? weight : 1;
}

/** A field of the JSON docket keeps in a consumer's description (a share's weight, a routed worker's model). */
function describedAs(description: string | undefined, field: string): unknown {
  try {
    return (JSON.parse(description ?? "{}") as Record<string, unknown> | null)?.[field];
  } catch {
    return undefined;
  }
}

/**
 * The consumer of one API key's jobs on `model` (undefined: the default model) in a shared lane, with the key's
 * weight in its description: docket-share-<lane>-<key>[-<model>] on docket.jobs.<lane>.*.<model or _>.<key>, or for
 * its jobs with a deadline docket-due-… on the same subjects with a seventh token, `due`.
 */
export interface Share {
  lane: Lane;
  model: string | undefined;
  owner: string;
  due?: boolean;
}

export function shareConsumerConfig(share: Share, weight: number, o: ProvisionOptions = {}): Partial<ConsumerConfig> {
  const { lane, model, owner, due } = share;
  return {
    durable_name: shareConsumer(lane, owner, model, due),
    filter_subject: subjects.ownerJobs(lane, model, owner, due),
    description: shareDescription(weight),
    ...jobConsumerSettings(o),
  };
}

/**
 * Creates a key's docket-share consumer when it does not exist, or sets its weight when it changed: what the
 * producer calls before it publishes the key's first job on a lane and model, and when an admin changes the weight.
 */
export async function ensureShareConsumer(
  nc: NatsConnection,
  share: Share & { weight: number },
  options: ProvisionOptions = {},
): Promise<void> {
  const jsm = await jetstreamManager(nc);
  const config = shareConsumerConfig(share, share.weight, options);
  const name = config.durable_name as string;
  const info = await jsm.consumers.info(JOBS_STREAM, name).catch((err) => {
    if (notFound(err)) return undefined;
    throw err;
  });
  if (!info) await jsm.consumers.add(JOBS_STREAM, config);
  else if (shareWeight(info.config.description) !== share.weight)
    await jsm.consumers.update(JOBS_STREAM, name, { description: config.description });
}

/** The consumer of a lane's jobs routed to one worker (token: workerToken) that holds their document's prefix. */
export function routedConsumerConfig(
  lane: Lane,
  worker: string,
  model: string | undefined,
  o: ProvisionOptions = {},
): Partial<ConsumerConfig> {
  return {
    durable_name: routedConsumer(lane, worker),
    filter_subject: subjects.routedJobs(lane, worker),
    // Who may take its jobs over when the worker dies: a worker of the same model.
    ...(model ? { description: JSON.stringify({ model }) } : {}),
    ...jobConsumerSettings(o),
  };
}

/** The model a docket-at consumer's worker served (its description), if it says. */
export function routedModel(description: string | undefined): string | undefined {
  const model = describedAs(description, "model");
  return typeof model === "string" ? model : undefined;
}

/** Creates the consumer of `lane`'s jobs routed to `worker` when it does not exist: before the producer routes one there. */
export async function ensureRoutedConsumer(
  nc: NatsConnection,
  lane: Lane,
  worker: string,
  model: string | undefined,
  options: ProvisionOptions = {},
): Promise<void> {
  await addIfMissing(await jetstreamManager(nc), routedConsumerConfig(lane, worker, model, options));
}

/** Creates a consumer of DOCKET_JOBS when it does not exist; one that exists is left as it is. */
async function addIfMissing(jsm: JetStreamManager, config: Partial<ConsumerConfig>): Promise<void> {
  const exists = await jsm.consumers.info(JOBS_STREAM, config.durable_name as string).then(
    () => true,
    (err) => {
      if (notFound(err)) return false;
      throw err;
    },
  );
  if (!exists) await jsm.consumers.add(JOBS_STREAM, config);
}

/** The streams' fixed consumers: the default model's per lane, and the recorder's. */
export function consumerConfigs(o: ProvisionOptions = {}): { stream: string; config: Partial<ConsumerConfig> }[] {
  const workers = LANES.map((lane) => ({ stream: JOBS_STREAM, config: workerConsumerConfig(lane, undefined, o) }));
  const recorder = {
    stream: EVENTS_STREAM,
    config: {
      durable_name: RECORDER_CONSUMER,
      ack_policy: AckPolicy.Explicit,
      ack_wait: nanos(30_000),
      max_ack_pending: 10_000,
      deliver_policy: DeliverPolicy.All,
    } satisfies Partial<ConsumerConfig>,
  };
  return [...workers, recorder];
}

async function ensureStream(jsm: JetStreamManager, config: NamedStreamConfig): Promise<void> {
  const name = config.name;
  const exists = await jsm.streams.info(name).then(
    () => true,
    () => false,
  );
  if (exists) await jsm.streams.update(name, config);
  else await jsm.streams.add(config);
}

async function ensureConsumer(jsm: JetStreamManager, stream: string, config: Partial<ConsumerConfig>): Promise<void> {
  const name = config.durable_name as string;
  const exists = await jsm.consumers.info(stream, name).then(
    () => true,
    () => false,
  );
  if (exists) {
    const { durable_name: _d, deliver_policy: _p, ...updatable } = config;
    await jsm.consumers.update(stream, name, updatable);
  } else await jsm.consumers.add(stream, config);
}

/**
 * Creates or updates docket's streams, consumers and buckets: the JetStream counterpart of migrations.
 * Idempotent: a second run with the same options changes nothing.
 */
export async function provision(nc: NatsConnection, options: ProvisionOptions = {}): Promise<void> {
  const jsm = await jetstreamManager(nc);
  for (const s of streamConfigs(options)) await ensureStream(jsm, s);
  // The default consumers first: their filter must be narrowed before a model's consumer can exist beside them.
  for (const c of consumerConfigs(options)) await ensureConsumer(jsm, c.stream, c.config);
  const models = new Set(options.models ?? []);
  const shares: Partial<ConsumerConfig>[] = [];
  /** docket-at consumers with nothing queued or in flight: deleted below when their worker is gone. */
  const drained: { name: string; worker: string }[] = [];
  for await (const c of jsm.consumers.list(JOBS_STREAM)) {
    const of = workerConsumerOf(c.name);
    if (of?.worker && c.num_pending === 0 && c.num_ack_pending === 0) drained.push({ name: c.name, worker: of.worker });
    // A key's docket-share consumers keep their weight and take the settings (ack wait, deliveries) of the rest.
    if (of?.worker) shares.push(routedConsumerConfig(of.lane, of.worker, routedModel(c.config.description), options));
    else if (of?.owner)
      shares.push(shareConsumerConfig({ ...of, owner: of.owner, model: of.model }, shareWeight(c.config.description), options));
    else if (of?.model) models.add(of.model);
  }
  for (const model of models)
    for (const lane of LANES) await ensureConsumer(jsm, JOBS_STREAM, workerConsumerConfig(lane, model, options));
  for (const config of shares) await ensureConsumer(jsm, JOBS_STREAM, config);
  const js = jetstream(nc);
  const replicas = options.replicas ?? 1;
  const control = await new Kvm(js).create(CONTROL_BUCKET, { history: 1, replicas, storage: StorageType.File });
  // A worker id changes with every start (host and pid), and with it its docket-at consumers: those of workers gone
  // (no heartbeat key: a worker deletes its own when it stops; a dead one's goes once stale) with nothing left in them
  // are deleted, so the consumer list every worker reads each round does not grow with restarts.
  for (const { name, worker } of drained) {
    const entry = await control.get(`workers.${worker}`).catch(() => null);
    const at = entry?.operation === "PUT" ? (entry.json() as { at?: unknown }).at : undefined;
    if (typeof at === "string" && isFresh({ at })) continue;
    await jsm.consumers.delete(JOBS_STREAM, name).catch(() => undefined);
  }
  await new Objm(js).create(DOCS_BUCKET, { replicas, storage: StorageType.File });
  // Document-prefix checkpoints shared between workers: kept PREFIX_TTL_MS, at most options.prefixBytes.
  const prefixLimits = { max_age: nanos(PREFIX_TTL_MS), max_bytes: options.prefixBytes || -1 };
  const prefixStream = `OBJ_${PREFIX_BUCKET}`;
  const prefixExists = await jsm.streams.info(prefixStream).then(
    () => true,
    () => false,
  );
  if (prefixExists) await jsm.streams.update(prefixStream, prefixLimits);
  else
    await new Objm(js).create(PREFIX_BUCKET, {
      replicas,
      storage: StorageType.File,
      ttl: prefixLimits.max_age,
      max_bytes: prefixLimits.max_bytes,
    });
}

/**
 * Creates the consumers of `model`'s jobs that do not exist yet (one per lane); those that exist are left as they
 * are (provision() keeps their settings). What a worker serving `model` calls before it pulls. Throws what JetStream
 * answers: a permission error for a NATS user that may not create consumers, 10100 (filtered consumer not unique)
 * while the default consumers still have the filter from before models had names (provision() narrows it).
 */
export async function ensureModelConsumers(nc: NatsConnection, model: string, options: ProvisionOptions = {}): Promise<void> {
  const jsm = await jetstreamManager(nc);
  for (const lane of LANES) await addIfMissing(jsm, workerConsumerConfig(lane, model, options));
}

/** What of docket's layout JetStream holds now (inspectLayout). */
export interface Layout {
  /** What is not there, as an operator reads it: "stream DOCKET_JOBS", "consumer DOCKET_JOBS/docket-workers-batch". */
  missing: string[];
  /** When DOCKET_JOBS was created: a new value means the stream, and every job message in it, was lost. */
  jobsCreated?: string;
}

/** The streams behind the buckets: a KV bucket is stream KV_<name>, an object store OBJ_<name>. */
const BUCKET_STREAMS = [
  { stream: `KV_${CONTROL_BUCKET}`, what: `KV bucket ${CONTROL_BUCKET}` },
  { stream: `OBJ_${DOCS_BUCKET}`, what: `object store ${DOCS_BUCKET}` },
  { stream: `OBJ_${PREFIX_BUCKET}`, what: `object store ${PREFIX_BUCKET}` },
];

const notFound = (err: unknown) =>
  err instanceof JetStreamApiError &&
  (err.code === JetStreamApiCodes.StreamNotFound || err.code === JetStreamApiCodes.ConsumerNotFound);

/**
 * Which of the streams, consumers and buckets provision() creates exist (read-only: the producer's restricted
 * NATS user may ask). Throws when JetStream does not answer: then nothing is known to be missing.
 */
export async function inspectLayout(nc: NatsConnection, timeoutMs = 2_000): Promise<Layout> {
  const jsm = await jetstreamManager(nc, { timeout: timeoutMs });
  const missing: string[] = [];
  let jobsCreated: string | undefined;
  const exists = (ask: Promise<unknown>, what: string) =>
    ask.then(
      () => true,
      (err) => {
        if (!notFound(err)) throw err;
        missing.push(what);
        return false;
      },
    );
  for (const name of [JOBS_STREAM, EVENTS_STREAM]) {
    await exists(
      jsm.streams.info(name).then((info) => {
        if (name === JOBS_STREAM) jobsCreated = info.created;
      }),
      `stream ${name}`,
    );
  }
  for (const c of consumerConfigs())
    await exists(jsm.consumers.info(c.stream, c.config.durable_name as string), `consumer ${c.stream}/${c.config.durable_name}`);
  for (const b of BUCKET_STREAMS) await exists(jsm.streams.info(b.stream), b.what);
  return { missing, ...(jobsCreated ? { jobsCreated } : {}) };
}
