import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import { connectNats, type NatsSecurity } from "../../runtime/nats.ts";
import { freePort, type RunningNatsServer, startNatsServer } from "../../tools/nats-server.ts";

export interface TestNats {
  url: string;
  port: number;
  storeDir: string;
  server: RunningNatsServer;
  /** Opens a client connection that stop() closes. */
  connect(name?: string, security?: NatsSecurity): Promise<NatsConnection>;
  /** Stops the server and starts it again on the same port and store; `wipe` empties the store first (a lost disk). */
  restart(options?: { wipe?: boolean }): Promise<void>;
  /** Stops the server (the store is kept), runs `during`, then starts it again on the same port and store. */
  outage<T>(during: () => Promise<T>): Promise<T>;
  stop(): Promise<void>;
}

export interface TestNatsOptions {
  /**
   * A config file (e.g. deploy/nats/secure.conf) instead of plain `-js`. Its relative store_dir
   * (./data/nats) lands in the temporary folder, which is the server's working directory.
   */
  conf?: string;
  /** Environment for the server: the $VARIABLES the config file reads. */
  env?: Record<string, string>;
  /** Extra arguments. */
  args?: string[];
}

/** A real nats-server with JetStream on a free port and a temporary store. */
export async function startTestNats(options: TestNatsOptions = {}): Promise<TestNats> {
  const port = await freePort();
  const storeDir = await mkdtemp(join(tmpdir(), "docket-nats-"));
  const args = options.conf
    ? ["-c", options.conf, "-a", "127.0.0.1", "-p", String(port), "-m", "0", ...(options.args ?? [])]
    : ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", storeDir, ...(options.args ?? [])];
  const serverOptions = { args, cwd: storeDir, env: { ...process.env, ...options.env } };
  const connections: NatsConnection[] = [];
  const t: TestNats = {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir,
    server: await startNatsServer(serverOptions),
    async connect(name = "test", security) {
      const nc = await connectNats(t.url, name, security);
      connections.push(nc);
      return nc;
    },
    restart: ({ wipe = false } = {}) =>
      t.outage(async () => {
        if (!wipe) return;
        await rm(storeDir, { recursive: true, force: true });
        await mkdir(storeDir);
      }),
    async outage(during) {
      await t.server.stop();
      try {
        return await during();
      } finally {
        t.server = await startNatsServer(serverOptions);
      }
    },
    async stop() {
      await Promise.all(connections.map((nc) => nc.close().catch(() => undefined)));
      await t.server.stop();
      await rm(storeDir, { recursive: true, force: true });
    },
  };
  return t;
}
