import type { AddressInfo } from "node:net";
import { type ServerType, serve } from "@hono/node-server";
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Hono } from "hono";
import type { Logger } from "../runtime/log.ts";
import { connectNats, isPermissionError, natsSecurity } from "../runtime/nats.ts";
import { provision, provisionOptions } from "../runtime/provision.ts";
import type { Config } from "../schema/config.ts";
import { TERMINAL_STATES } from "../schema/job.ts";
import type { WebhookDeliveryRow } from "../schema/tables.ts";
import { createApp } from "./app.ts";
import { DashboardSessions } from "./auth/session.ts";
import { BatchIntake } from "./batch-intake.ts";
import { Canceller } from "./cancel.ts";
import { Dashboard } from "./dashboard/snapshot.ts";
import { type OpenDatabase, openDatabase } from "./db.ts";
import { Deadlines } from "./deadlines.ts";
import { DocumentStore } from "./documents.ts";
import { TokenEstimator } from "./estimate.ts";
import { resolveOcr } from "./extraction/ocr.ts";
import { ExtractionPool } from "./extraction/pool.ts";
import { JetStreamWatch } from "./jetstream-watch.ts";
import { ProducerMetrics } from "./metrics.ts";
import { BatchOutput } from "./openai-batch-output.ts";
import { OpenAIBatches } from "./openai-batches.ts";
import { OriginPolicy } from "./origin-policy.ts";
import { ProducerEvents } from "./producer-events.ts";
import { Publisher } from "./publisher.ts";
import { QueueEstimator } from "./queue-estimate.ts";
import { Quotas } from "./quotas.ts";
import { RateLimiter } from "./rate-limit.ts";
import { type JobChange, Recorder } from "./recorder.ts";
import { Retrier } from "./retry.ts";
import { usageKeyName } from "./routes/usage.ts";
import { Shares } from "./shares.ts";
import { KeyStore } from "./stores/api-keys.ts";
import { BatchStore } from "./stores/batches.ts";
import { DocumentRecords } from "./stores/documents.ts";
import { FileStore } from "./stores/files.ts";
import { JobEventStore } from "./stores/job-events.ts";
import { JobStore } from "./stores/jobs.ts";
import { OpenAIBatchStore } from "./stores/openai-batches.ts";
import { Outbox } from "./stores/outbox.ts";
import { UsageStore } from "./stores/usage.ts";
import { Throughput } from "./throughput.ts";
import { AddressPolicy } from "./webhooks/address.ts";
import { Dispatcher } from "./webhooks/dispatcher.ts";
import { webhookSecret } from "./webhooks/signature.ts";
import { WorkerRegistry } from "./worker-registry.ts";

export interface Producer {
  app: Hono;
  url: string;
  database: OpenDatabase;
  nc: NatsConnection;
  store: JobStore;
  recorder: Recorder;
  publisher: Publisher;
  jetstreamWatch: JetStreamWatch;
  batches: BatchStore;
  outbox: Outbox;
  dispatcher: Dispatcher;
  metrics: ProducerMetrics;
  deadlines: Deadlines;
  /** The live workers' heartbeats: who serves which model and holds which documents. */
  workerRegistry: WorkerRegistry;
  close(): Promise<void>;
}

/**
 * Wires the producer: SQLite (migrated), NATS (provisioned), publisher, recorder, deadline sweep, HTTP server.
 * Shutdown order, in close(): stop accepting HTTP, stop the worker registry, the extraction threads, the republisher,
 * the deadline sweep, the JetStream and heartbeat watches, drain the recorder, let webhook attempts in flight finish,
 * close NATS, close SQLite.
 */
export async function startProducer(config: Config, log: Logger): Promise<Producer> {
  const database = openDatabase(config.DOCKET_DB);
  const nc = await connectNats(config.NATS_URL, "docket-producer", natsSecurity(config));
  if (config.DOCKET_PROVISION === "auto") {
    await provision(nc, provisionOptions(config)).catch((err) => {
      if (!isPermissionError(err)) throw err;
      log.warn(
        { natsUser: config.NATS_USER, err: (err as Error).message },
        "this NATS user may not provision JetStream; using what exists (run `npm run provision` as the admin user, or set DOCKET_PROVISION=skip)",
      );
    });
  }
  const store = new JobStore(database.db);
  const batches = new BatchStore(database.db);
  const recorder = new Recorder(database.db, log, batches);
  const interrupted = batches.recoverInterrupted();
  if (interrupted) log.warn({ batches: interrupted }, "batches interrupted during intake marked failed");
  const documents = new DocumentStore(nc, {
    inlineLimit: config.DOCKET_INLINE_LIMIT_BYTES,
    maxDocument: config.DOCKET_MAX_DOCUMENT_BYTES,
  });
  const ocr = resolveOcr(config.DOCKET_OCR);
  if (ocr.missing) log.warn({ reason: ocr.missing }, "OCR is off: scanned PDFs and images are refused (DOCKET_OCR)");
  const extraction = new ExtractionPool(
    {
      threads: config.DOCKET_EXTRACT_THREADS,
      queue: config.DOCKET_EXTRACT_QUEUE,
      maxPages: config.DOCKET_EXTRACT_MAX_PAGES,
      maxUncompressedBytes: config.DOCKET_EXTRACT_MAX_UNCOMPRESSED_BYTES,
      timeoutMs: config.DOCKET_EXTRACT_TIMEOUT_MS,
      memoryBytes: config.DOCKET_EXTRACT_MEMORY_BYTES,
      ocr: ocr.enabled,
      maxOcrPages: config.DOCKET_OCR_MAX_PAGES,
      ocrTimeoutMs: config.DOCKET_OCR_TIMEOUT_MS,
    },
    log,
  );
  extraction.start();
  const producerEvents = new ProducerEvents(nc, database.db, recorder, log);
  const keys = new KeyStore(database.db, config.DOCKET_API_KEY);
  const workerRegistry = new WorkerRegistry(nc, log, config.DOCKET_DEFAULT_MODEL);
  const shares = new Shares(nc, log, {
    ...(config.DOCKET_PREFIX_ROUTING === "true" ? { holders: workerRegistry } : {}),
    weightOf: (owner) => keys.weight(owner),
    provision: provisionOptions(config),
    ...(config.DOCKET_DEFAULT_MODEL ? { defaultModel: config.DOCKET_DEFAULT_MODEL } : {}),
  });
  const publisher = new Publisher(nc, store, documents, producerEvents, shares, log);
  const canceller = new Canceller(nc, producerEvents, store, batches, log);
  const documentRecords = new DocumentRecords(database.db);
  const estimator = new TokenEstimator(documentRecords, config.DOCKET_MAX_TOKENS);
  const usage = new UsageStore(database.db);
  const quotas = new Quotas(keys, store, usage);
  const intake = new BatchIntake(batches, publisher, documents, await jetstreamManager(nc), log, estimator, quotas);
  const webhookPolicy = new AddressPolicy(config.DOCKET_WEBHOOK_ALLOW);
  const outbox = new Outbox(database.db, {
    maxAttempts: config.DOCKET_WEBHOOK_MAX_ATTEMPTS,
    baseMs: config.DOCKET_WEBHOOK_RETRY_BASE_MS,
    maxMs: config.DOCKET_WEBHOOK_RETRY_MAX_MS,
  });
  const dispatcher = new Dispatcher(outbox, webhookPolicy, webhookSecret(database.db, config.DOCKET_WEBHOOK_SECRET, log), log, {
    concurrency: config.DOCKET_WEBHOOK_CONCURRENCY,
    timeoutMs: config.DOCKET_WEBHOOK_TIMEOUT_MS,
  });
  recorder.on("change", (c: JobChange) => TERMINAL_STATES.includes(c.state) && dispatcher.wake());
  await recorder.start(nc);
  publisher.start();
  dispatcher.start();
  void publisher.sweep();
  const jetstreamWatch = new JetStreamWatch(nc, database.db, store, publisher, log, {
    intervalMs: config.DOCKET_JETSTREAM_CHECK_SECONDS * 1000,
    provision: config.DOCKET_PROVISION === "auto",
    provisionOptions: provisionOptions(config),
  });
  await jetstreamWatch.start();
  const deadlines = new Deadlines(store, batches, producerEvents, canceller, log, config.DOCKET_DEADLINE_CHECK_MS);
  deadlines.start();
  // The one watch of the workers' heartbeats: Throughput (queue estimates) listens from before it starts, so it hears
  // the heartbeats already there too.
  const throughput = new Throughput(workerRegistry);
  throughput.start();
  await workerRegistry.start();

  if (!keys.enabled)
    log.warn("DOCKET_API_KEY is not set: the API is OPEN to anyone who can reach it; set it to require API keys");
  else if ((config.DOCKET_API_KEY?.length ?? 0) < 32)
    log.warn("DOCKET_API_KEY is shorter than 32 characters: use a long random key (openssl rand -base64 32)");
  const metrics = new ProducerMetrics(store, nc, recorder, { store: usage, names: () => keys.names(), keyName: usageKeyName });
  dispatcher.on("attempt", (row: WebhookDeliveryRow) =>
    metrics.webhookDeliveries.inc({ outcome: row.status === "delivered" || row.status === "dead" ? row.status : "retry" }),
  );
  const queue = new QueueEstimator(store, throughput, (owner) => keys.weight(owner));
  const dashboard = new Dashboard({ jobs: store, batches, queue, workers: workerRegistry }, nc, recorder, log, {
    sampleMs: config.DOCKET_DASHBOARD_SAMPLE_SECONDS * 1000,
  });
  dashboard.start();
  const files = new FileStore(database.db);
  const openaiBatches = new OpenAIBatches({
    db: database.db,
    batches,
    openaiBatches: new OpenAIBatchStore(database.db),
    intake,
    canceller,
    files,
    output: new BatchOutput(batches, config.DOCKET_MAX_TOKENS),
    maxBatchItems: config.DOCKET_MAX_BATCH_ITEMS,
    maxDocument: config.DOCKET_MAX_DOCUMENT_BYTES,
    windowSeconds: config.DOCKET_OPENAI_BATCH_WINDOW_SECONDS,
    log,
  });
  const retrier = new Retrier({
    db: database.db,
    jobs: store,
    batches,
    openaiBatches,
    events: producerEvents,
    publisher,
    canceller,
    intake,
    quotas,
    estimator,
    contextSize: config.DOCKET_CONTEXT_SIZE,
    log,
  });
  const app = createApp({
    keys,
    shares,
    origins: new OriginPolicy({ host: config.DOCKET_HOST, publicUrls: config.DOCKET_PUBLIC_URL }),
    sessions: new DashboardSessions(),
    rateLimiter: config.DOCKET_RATE_LIMIT > 0 ? new RateLimiter(config.DOCKET_RATE_LIMIT, config.DOCKET_RATE_BURST) : undefined,
    store,
    publisher,
    outbox,
    webhookPolicy,
    recorder,
    defaultMaxTokens: config.DOCKET_MAX_TOKENS,
    chatTimeoutMs: config.DOCKET_CHAT_TIMEOUT_SECONDS * 1000,
    log,
    documents,
    documentRecords,
    estimator,
    quotas,
    retrier,
    queue,
    usage,
    canceller,
    batches,
    intake,
    extraction,
    maxDocument: config.DOCKET_MAX_DOCUMENT_BYTES,
    maxBatchItems: config.DOCKET_MAX_BATCH_ITEMS,
    maxBody: config.DOCKET_MAX_DOCUMENT_BYTES + 64 * 1024,
    maxBatchBody: config.DOCKET_MAX_BATCH_BODY_BYTES,
    notReady: () => jetstreamWatch.notReady(),
    metrics,
    dashboard,
    events: new JobEventStore(database.db),
    files,
    openaiBatches,
    workerRegistry,
  });
  const server: ServerType = await new Promise((resolve) => {
    const s = serve({ fetch: app.fetch, port: config.DOCKET_PORT, hostname: config.DOCKET_HOST }, () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${config.DOCKET_HOST}:${port}`;
  log.info({ url }, "producer listening");

  return {
    app,
    url,
    database,
    nc,
    store,
    recorder,
    publisher,
    jetstreamWatch,
    batches,
    outbox,
    dispatcher,
    metrics,
    deadlines,
    workerRegistry,
    async close() {
      dashboard.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await workerRegistry.stop();
      await extraction.close();
      publisher.stop();
      await deadlines.stop();
      await jetstreamWatch.stop();
      throughput.stop();
      await recorder.stop();
      await dispatcher.stop();
      metrics.close();
      await nc.drain().catch(() => undefined);
      database.close();
    },
  };
}
