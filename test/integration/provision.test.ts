import { AckPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureModelConsumers, ensureRoutedConsumer, inspectLayout, provision } from "../../runtime/provision.ts";
import {
  CONTROL_BUCKET,
  EVENTS_STREAM,
  JOBS_STREAM,
  LANES,
  RECORDER_CONSUMER,
  routedConsumer,
  subjects,
  workerConsumer,
} from "../../schema/subjects.ts";
import { startTestNats, type TestNats } from "../helpers/nats.ts";

let nats: TestNats;
beforeAll(async () => {
  nats = await startTestNats();
});
afterAll(() => nats?.stop());

async function snapshot() {
  const nc = await nats.connect();
  const jsm = await jetstreamManager(nc);
  const streams = [];
  for await (const s of jsm.streams.list()) streams.push({ config: s.config, created: s.created });
  const consumers = [];
  for (const stream of [JOBS_STREAM, EVENTS_STREAM]) {
    for await (const c of jsm.consumers.list(stream)) consumers.push({ name: c.name, config: c.config, created: c.created });
  }
  streams.sort((a, b) => a.config.name.localeCompare(b.config.name));
  consumers.sort((a, b) => a.name.localeCompare(b.name));
  return { streams, consumers };
}

describe("JetStream provisioning", () => {
  it("creates the streams, the per-lane worker consumers, the recorder and the buckets", async () => {
    const nc = await nats.connect();
    await provision(nc);
    const s = await snapshot();
    const names = s.streams.map((x) => x.config.name);
    expect(names).toEqual(expect.arrayContaining([JOBS_STREAM, EVENTS_STREAM, "KV_docket-control", "OBJ_docket-docs"]));
    expect(s.streams.find((x) => x.config.name === JOBS_STREAM)?.config.retention).toBe("workqueue");
    expect(s.consumers.map((c) => c.name).sort()).toEqual([RECORDER_CONSUMER, ...LANES.map((l) => workerConsumer(l))].sort());
  });

  it("running it twice changes nothing", async () => {
    const nc = await nats.connect();
    await provision(nc);
    const before = await snapshot();
    await provision(nc);
    await provision(nc);
    expect(await snapshot()).toEqual(before);
  });

  it("updates a setting that changed (max deliveries) without recreating the consumer", async () => {
    const nc = await nats.connect();
    await provision(nc, { maxDeliver: 5 });
    const jsm = await jetstreamManager(nc);
    const before = await jsm.consumers.info(JOBS_STREAM, workerConsumer("batch"));
    await provision(nc, { maxDeliver: 9 });
    const after = await jsm.consumers.info(JOBS_STREAM, workerConsumer("batch"));
    expect(after.config.max_deliver).toBe(9);
    expect(after.created).toBe(before.created);
  });

  it("a model's consumers are created on demand beside the default ones, and provision keeps their settings with the others'", async () => {
    const nc = await nats.connect();
    await provision(nc, { maxDeliver: 5 });
    await ensureModelConsumers(nc, "triage", { maxDeliver: 5 });
    await ensureModelConsumers(nc, "triage", { maxDeliver: 5 });
    const jsm = await jetstreamManager(nc);
    const info = await jsm.consumers.info(JOBS_STREAM, workerConsumer("batch", "triage"));
    expect(info.config.filter_subject).toBe("docket.jobs.batch.*.triage");
    expect((await jsm.consumers.info(JOBS_STREAM, workerConsumer("batch"))).config.filter_subject).toBe("docket.jobs.batch.*");
    // Jobs naming the model go to its consumer only; jobs naming none to the default one.
    const js = jetstream(nc);
    await js.publish(subjects.job("batch", "classify", "triage"), "{}");
    await js.publish(subjects.job("batch", "classify"), "{}");
    expect((await jsm.consumers.info(JOBS_STREAM, workerConsumer("batch", "triage"))).num_pending).toBe(1);
    expect((await jsm.consumers.info(JOBS_STREAM, workerConsumer("batch"))).num_pending).toBe(1);
    await provision(nc, { maxDeliver: 7 });
    const after = await jsm.consumers.info(JOBS_STREAM, workerConsumer("batch", "triage"));
    expect(after.config.max_deliver).toBe(7);
    expect(after.created).toBe(info.created);
    // The layout check knows the fixed consumers only: a model's is neither missing nor unknown.
    expect((await inspectLayout(nc)).missing).toEqual([]);
    await jsm.streams.purge(JOBS_STREAM);
  });

  it("migrates a deployment from before model names: the default consumers' filter narrows in place, jobs kept", async () => {
    const nc = await nats.connect();
    const jsm = await jetstreamManager(nc);
    for await (const c of jsm.consumers.list(JOBS_STREAM)) await jsm.consumers.delete(JOBS_STREAM, c.name);
    // The layout provision created before: one consumer per lane on docket.jobs.<lane>.>.
    for (const lane of LANES)
      await jsm.consumers.add(JOBS_STREAM, {
        durable_name: workerConsumer(lane),
        filter_subject: `docket.jobs.${lane}.>`,
        ack_policy: AckPolicy.Explicit,
      });
    await jetstream(nc).publish(subjects.job("default", "summarize"), "{}");
    const before = await jsm.consumers.info(JOBS_STREAM, workerConsumer("default"));
    // A model's consumer cannot exist beside the old filter (it would overlap it)...
    await expect(ensureModelConsumers(nc, "triage")).rejects.toMatchObject({ code: 10100 });
    // ...until provision narrows it.
    await provision(nc);
    const after = await jsm.consumers.info(JOBS_STREAM, workerConsumer("default"));
    expect(after.config.filter_subject).toBe("docket.jobs.default.*");
    expect(after.created).toBe(before.created);
    expect(after.num_pending).toBe(1);
    await ensureModelConsumers(nc, "triage");
    expect((await jsm.consumers.info(JOBS_STREAM, workerConsumer("interactive", "triage"))).name).toBe(
      "docket-workers-interactive-triage",
    );
  });
  it("deletes the empty docket-at consumers of workers gone; keeps a live worker's, and a gone worker's with a job left", async () => {
    const nc = await nats.connect();
    await provision(nc);
    for (const worker of ["w-gone", "w-live", "w-gone-busy"]) await ensureRoutedConsumer(nc, "batch", worker, "m");
    const kv = await new Kvm(nc).open(CONTROL_BUCKET);
    await kv.put("workers.w-live", JSON.stringify({ at: new Date().toISOString() }));
    await jetstream(nc).publish(subjects.routedJob("batch", "summarize", undefined, undefined, "w-gone-busy"), "{}");
    await provision(nc);
    const names: string[] = [];
    for await (const c of (await jetstreamManager(nc)).consumers.list(JOBS_STREAM)) names.push(c.name);
    expect(names).not.toContain(routedConsumer("batch", "w-gone"));
    expect(names).toEqual(expect.arrayContaining([routedConsumer("batch", "w-live"), routedConsumer("batch", "w-gone-busy")]));
  });
});
