import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../runtime/log.ts";
import { connectNats } from "../../runtime/nats.ts";
import { provision } from "../../runtime/provision.ts";
import { CONTROL_BUCKET, cancelKey } from "../../schema/subjects.ts";
import { type RunningNatsServer, startLocalJetStream } from "../../tools/nats-server.ts";
import { Cancellations } from "../../worker/cancellations.ts";

let dir: string;
let server: RunningNatsServer & { url: string };
let nc: NatsConnection;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "docket-cancel-watch-"));
  server = await startLocalJetStream(dir);
  nc = await connectNats(server.url, "admin");
});
afterAll(async () => {
  await nc?.close();
  await server?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("a worker's watch of cancel flags", () => {
  it("opens once the control bucket exists (a cluster still electing its leader) and then aborts on a flag", async () => {
    const cancellations = new Cancellations(nc, createLogger("test", "silent"));
    const cancelled: string[] = [];
    // Nothing is provisioned yet: opening the watch fails until it is.
    const watching = cancellations.watch((jobId) => cancelled.push(jobId), 30_000);
    await new Promise((r) => setTimeout(r, 1_500));
    await provision(nc);
    await watching;

    const kv = await new Kvm(nc).open(CONTROL_BUCKET);
    await kv.put(cancelKey("job-1"), new Date().toISOString());
    for (const deadline = Date.now() + 5_000; cancelled.length === 0 && Date.now() < deadline; )
      await new Promise((r) => setTimeout(r, 50));
    cancellations.stop();
    expect(cancelled).toEqual(["job-1"]);
  }, 60_000);

  it("gives up with the error once its time to open runs out", async () => {
    const other = await startLocalJetStream(await mkdtemp(join(tmpdir(), "docket-cancel-watch-")));
    const bare = await connectNats(other.url, "admin");
    try {
      const cancellations = new Cancellations(bare, createLogger("test", "silent"));
      await expect(cancellations.watch(() => {}, 1_500)).rejects.toThrow();
    } finally {
      await bare.close();
      await other.stop();
    }
  }, 30_000);
});
