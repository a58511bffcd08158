import type { AddressInfo } from "node:net";
import { type ServerType, serve } from "@hono/node-server";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Hono } from "hono";
import type { Logger } from "../ops/log.ts";
import { connectNats, isPermissionError, natsSecurity } from "../ops/nats.ts";
import { provision, provisionOptions } from "../ops/provision.ts";
import type { Config } from "../schema/config.ts";
import { createApp } from "./app.ts";
import { type OpenDatabase, openDatabase } from "./db.ts";
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
  close(): Promise<void>;
}

/**
 * Wires the producer: SQLite (migrated), NATS (provisioned), publisher, recorder, HTTP server.
 * Shutdown order, in close(): stop accepting HTTP, stop the republisher, drain the recorder,
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
  const publisher = new Publisher(nc, store, log);
  const recorder = new Recorder(database.db, log);
  await recorder.start(nc);
  publisher.start();
  void publisher.sweep();

  const app = createApp({
    store,
    publisher,
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
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      publisher.stop();
      await recorder.stop();
      await nc.drain().catch(() => undefined);
      database.close();
    },
  };
}
