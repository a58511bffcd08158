import { jetstreamManager } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { provision } from "../../runtime/provision.ts";
import { EVENTS_STREAM, JOBS_STREAM, LANES, RECORDER_CONSUMER, workerConsumer } from "../../schema/subjects.ts";
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
    expect(s.consumers.map((c) => c.name).sort()).toEqual([RECORDER_CONSUMER, ...LANES.map(workerConsumer)].sort());
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
});
