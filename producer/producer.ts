import type { AddressInfo } from "node:net";
import { type ServerType, serve } from "@hono/node-server";
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Hono } from "hono";
import type { Logger } from "../ops/log.ts";
import { connectNats } from "../ops/nats.ts";
import { provision } from "../ops/provision.ts";
import type { Config } from "../schema/config.ts";
import { createApp } from "./app.ts";
import { BatchIntake } from "./batch-intake.ts";
import { BatchStore } from "./batches.ts";
import { Canceller } from "./cancel.ts";
import { type OpenDatabase, openDatabase } from "./db.ts";
import { DocumentStore } from "./documents.ts";
import { JobStore } from "./jobs.ts";
import { Publisher } from "./publisher.ts";
import { Recorder } from "./recorder.ts";

export interface Producer {
  app: Hono;
  url: string;
  database: OpenDatabase;
  nc: NatsConnection;
  store: JobStore;
  recorder: Recorder;
  publisher: Publisher;
  batches: BatchStore;
  close(): Promise<void>;
}

/**
 * Wires the producer: SQLite (migrated), NATS (provisioned), publisher, recorder, HTTP server.
 * Shutdown order, in close(): stop accepting HTTP, stop the republisher, drain the recorder,
 * close NATS, close SQLite.
 */
export async function startProducer(config: Config, log: Logger): Promise<Producer> {
  const database = openDatabase(config.DOCKET_DB);
  const nc = await connectNats(config.NATS_URL, "docket-producer");
  await provision(nc, {
    ackWaitSeconds: config.DOCKET_ACK_WAIT,
    maxDeliver: config.DOCKET_MAX_DELIVER,
    eventsMaxAgeDays: config.DOCKET_EVENTS_MAX_AGE_DAYS,
    maxQueuedJobs: config.DOCKET_MAX_QUEUED_JOBS,
  });
  const store = new JobStore(database.db);
  const publisher = new Publisher(nc, store, log);
  const recorder = new Recorder(database.db, log);
  const batches = new BatchStore(database);
  recorder.onTransition((row, next, at) => row.batchId && batches.transition(row.batchId, row.state, next, at));
  const interrupted = batches.recoverInterrupted();
  if (interrupted) log.warn({ batches: interrupted }, "batches interrupted during intake marked failed");
  const documents = new DocumentStore(nc, { inlineLimit: config.DOCKET_INLINE_LIMIT, maxDocument: config.DOCKET_MAX_DOCUMENT });
  const canceller = new Canceller(nc, database, store, batches, recorder, log);
  const intake = new BatchIntake(batches, publisher, documents, await jetstreamManager(nc), log);
  await recorder.start(nc);
  publisher.start();
  void publisher.sweep();

  const app = createApp({
    store,
    publisher,
    log,
    documents,
    canceller,
    recorder,
    batches,
    intake,
    maxDocument: config.DOCKET_MAX_DOCUMENT,
    maxBatchItems: config.DOCKET_MAX_BATCH_ITEMS,
    maxBody: config.DOCKET_MAX_DOCUMENT + 64 * 1024,
    maxBatchBody: config.DOCKET_MAX_BATCH_BODY,
    ready: () => !nc.isClosed(),
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
    batches,
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      publisher.stop();
      await recorder.stop();
      await nc.drain().catch(() => undefined);
      database.close();
    },
  };
}
