import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import { connectNats } from "../../ops/nats.ts";
import { freePort, type RunningNatsServer, startNatsServer } from "../../ops/nats-server.ts";

export interface TestNats {
  url: string;
  port: number;
  storeDir: string;
  server: RunningNatsServer;
  /** Opens a client connection that stop() closes. */
  connect(name?: string): Promise<NatsConnection>;
  /** Stops the server (the store is kept) and starts it again on the same port and store. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** A real nats-server with JetStream on a free port and a temporary store. */
export async function startTestNats(): Promise<TestNats> {
  const port = await freePort();
  const storeDir = await mkdtemp(join(tmpdir(), "docket-nats-"));
  const args = ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", storeDir];
  const connections: NatsConnection[] = [];
  const t: TestNats = {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir,
    server: await startNatsServer({ args }),
    async connect(name = "test") {
      const nc = await connectNats(t.url, name);
      connections.push(nc);
      return nc;
    },
    async restart() {
      await t.server.stop();
      t.server = await startNatsServer({ args });
    },
    async stop() {
      await Promise.all(connections.map((nc) => nc.close().catch(() => undefined)));
      await t.server.stop();
      await rm(storeDir, { recursive: true, force: true });
    },
  };
  return t;
}
