import type { AddressInfo } from "node:net";
import { type ServerType, serve } from "@hono/node-server";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Hono } from "hono";
import type { Logger } from "../ops/log.ts";
import { connectNats } from "../ops/nats.ts";
import { provision } from "../ops/provision.ts";
import type { Config } from "../schema/config.ts";
import { TERMINAL_STATES } from "../schema/job.ts";
import { createApp } from "./app.ts";
import { type OpenDatabase, openDatabase } from "./db.ts";
import { JobStore } from "./jobs.ts";
import { Publisher } from "./publisher.ts";
import { type JobChange, Recorder } from "./recorder.ts";
import { AddressPolicy } from "./webhooks/address.ts";
import { Dispatcher } from "./webhooks/dispatcher.ts";
import { Outbox } from "./webhooks/outbox.ts";
import { webhookSecret } from "./webhooks/signature.ts";

export interface Producer {
  app: Hono;
  url: string;
  database: OpenDatabase;
  nc: NatsConnection;
  store: JobStore;
  recorder: Recorder;
  publisher: Publisher;
  outbox: Outbox;
  /** Call wake() after enqueueWebhook outside the recorder (batch events). */
  dispatcher: Dispatcher;
  close(): Promise<void>;
}

/**
 * Wires the producer: SQLite (migrated), NATS (provisioned), publisher, recorder, HTTP server.
 * Shutdown order, in close(): stop accepting HTTP, stop the republisher, drain the recorder,
 * let webhook attempts in flight finish, close NATS, close SQLite.
 */
export async function startProducer(config: Config, log: Logger): Promise<Producer> {
  const database = openDatabase(config.DOCKET_DB);
  const nc = await connectNats(config.NATS_URL, "docket-producer");
  await provision(nc, {
    ackWaitSeconds: config.DOCKET_ACK_WAIT,
    maxDeliver: config.DOCKET_MAX_DELIVER,
    eventsMaxAgeDays: config.DOCKET_EVENTS_MAX_AGE_DAYS,
  });
  const store = new JobStore(database.db);
  const publisher = new Publisher(nc, store, log);
  const recorder = new Recorder(database.db, log);
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

  const app = createApp({
    store,
    publisher,
    outbox,
    webhookPolicy,
    db: database.db,
    recorder,
    defaultMaxTokens: config.DOCKET_MAX_TOKENS,
    chatTimeoutMs: config.DOCKET_CHAT_TIMEOUT * 1000,
    log,
    inlineLimit: config.DOCKET_INLINE_LIMIT,
    maxBody: config.DOCKET_MAX_DOCUMENT + 64 * 1024,
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
    outbox,
    dispatcher,
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      publisher.stop();
      await recorder.stop();
      await dispatcher.stop();
      await nc.drain().catch(() => undefined);
      database.close();
    },
  };
}
