import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Producer, startProducer } from "../../producer/producer.ts";
import { createLogger } from "../../runtime/log.ts";
import { connectNats } from "../../runtime/nats.ts";
import { provision } from "../../runtime/provision.ts";
import { JOBS_STREAM } from "../../schema/subjects.ts";
import { freePort, type RunningNatsServer, startNatsServer } from "../../tools/nats-server.ts";
import { startWorker, type Worker } from "../../worker/worker.ts";
import { ledger, storedFinalEvents, submitJobs } from "../helpers/jobs.ts";
import { testConfig } from "../helpers/stack.ts";

const JOBS = 90;
const conf = (i: number) => resolve(import.meta.dirname, `../../deploy/nats/cluster/node-${i}.conf`);

interface Node {
  name: string;
  port: number;
  server: RunningNatsServer;
}

let dir: string;
const nodes: Node[] = [];
let producer: Producer | undefined;
const workers: Worker[] = [];

/** deploy/nats/cluster/node-{1,2,3}.conf on free loopback ports (flags override the files' ports and routes). */
async function startCluster(): Promise<string> {
  dir = await mkdtemp(join(tmpdir(), "docket-cluster-"));
  const ports = await Promise.all([1, 2, 3].map(async () => ({ client: await freePort(), route: await freePort() })));
  const routes = ports.map((p) => `nats-route://127.0.0.1:${p.route}`).join(",");
  // Started together: a node of a JetStream cluster is ready only once it has found the others.
  const servers = await Promise.all(
    ports.map((p, i) =>
      startNatsServer({
        args: [
          "-c",
          conf(i + 1),
          "-p",
          String(p.client),
          "-m",
          "0",
          "--cluster",
          `nats://127.0.0.1:${p.route}`,
          "--routes",
          routes,
        ],
        cwd: dir,
      }),
    ),
  );
  for (const [i, server] of servers.entries()) nodes.push({ name: `docket-${i + 1}`, port: ports[i]?.client ?? 0, server });
  return ports.map((p) => `nats://127.0.0.1:${p.client}`).join(",");
}

/** Provisions R3 streams once the cluster has elected its JetStream meta leader, and waits for theirs (with a deadline). */
async function provisionWhenReady(url: string): Promise<void> {
  const nc = await connectNats(url, "admin");
  try {
    for (const deadline = Date.now() + 30_000; ; ) {
      try {
        await provision(nc, { replicas: 3, ackWaitSeconds: 5 });
        // Each replicated stream (the KV buckets' too) answers requests once it has elected its own leader.
        const jsm = await jetstreamManager(nc);
        const streams = await jsm.streams.list().next();
        if (streams.every((s) => s.cluster?.leader)) return;
        throw new Error(`streams without a leader: ${streams.filter((s) => !s.cluster?.leader).map((s) => s.config.name)}`);
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  } finally {
    await nc.close();
  }
}

beforeAll(async () => {
  const url = await startCluster();
  await provisionWhenReady(url);
  const log = createLogger("test", "silent");
  const base = {
    NATS_URL: url,
    DOCKET_DB: join(dir, "docket.db"),
    DOCKET_REPLICAS: "3",
    DOCKET_ACK_WAIT_SECONDS: "5",
    DOCKET_CONTEXT_SIZE: "1024",
    DOCKET_MAX_BATCH: "3",
  };
  producer = await startProducer(testConfig(base), log);
  for (const id of ["worker-1", "worker-2"]) workers.push(await startWorker(testConfig({ ...base, DOCKET_WORKER_ID: id }), log));
});
afterAll(async () => {
  for (const w of workers) await w.close(0);
  await producer?.close();
  for (const n of nodes) await n.server?.stop("SIGKILL");
  if (dir) await rm(dir, { recursive: true, force: true });
});

/**
 * A job with some work in it (the grammar holds the model to 100 characters): one-token jobs finish
 * faster than they are submitted, so one worker could take them all and "share the work" would test timing.
 */
const workJob = (i: number) => ({
  task: "extract",
  lane: "batch",
  input: { text: `note ${i}` },
  params: {
    schema: { type: "object", properties: { a: { type: "string", minLength: 100, maxLength: 100 } }, required: ["a"] },
    maxTokens: 600,
  },
});

describe("a three-node JetStream cluster with replicated streams (R3)", () => {
  it("loses nothing when the node leading DOCKET_JOBS is killed mid-batch, and two workers share the work", async () => {
    const p = producer as Producer;
    const jsm = await jetstreamManager(p.nc);
    const info = await jsm.streams.info(JOBS_STREAM);
    expect(info.config.num_replicas).toBe(3);
    const leader = nodes.find((n) => n.name === info.cluster?.leader);
    expect(leader).toBeDefined();

    let killed: Promise<void> | undefined;
    const ids = await submitJobs(
      () => p.url,
      Array.from({ length: JOBS }, (_, i) => workJob(i)),
      4,
      (n) => {
        if (n === JOBS / 3) killed = leader?.server.stop("SIGKILL");
      },
    );
    await killed;
    const deadline = Date.now() + 120_000;
    for (const id of ids)
      await p.recorder.waitFor(id, ["succeeded", "failed"], () => p.store.get(id)?.state, Math.max(1, deadline - Date.now()));

    const { states, missing, duplicated } = ledger(p.database, ids);
    expect(missing).toEqual([]);
    expect(duplicated).toEqual([]);
    expect(states).toEqual({ succeeded: JOBS });
    const stored = await storedFinalEvents(p.nc);
    expect(ids.filter((id) => stored.get(id) !== 1)).toEqual([]);
    // DOCKET_JOBS has a new leader among the two nodes left.
    const after = await jsm.streams.info(JOBS_STREAM);
    expect(after.cluster?.leader).not.toBe(leader?.name);

    const byWorker = p.database.sqlite
      .prepare("select worker_id w, count(*) n from jobs where state = 'succeeded' group by worker_id order by w")
      .all() as { w: string; n: number }[];
    expect(byWorker.map((r) => r.w)).toEqual(["worker-1", "worker-2"]);
    for (const r of byWorker) expect(r.n).toBeGreaterThan(0);
  }, 180_000);
});
