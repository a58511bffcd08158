import { jetstream } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../runtime/log.ts";
import { provision } from "../../runtime/provision.ts";
import { subjects } from "../../schema/subjects.ts";
import { Intake } from "../../worker/intake.ts";
import { SlotPool } from "../../worker/slots.ts";
import { startTestNats, type TestNats } from "../helpers/nats.ts";

let nats: TestNats;
beforeAll(async () => {
  nats = await startTestNats();
  await provision(await nats.connect("admin"));
});
afterAll(() => nats?.stop());

/** A nats-server of the test's own, provisioned, a worker's connection to it, and `count` batch jobs queued there. */
async function ownServerWithBacklog(worker: string, prefix: string, count: number) {
  const own = await startTestNats();
  await provision(await own.connect("admin"));
  const nc = await own.connect(worker);
  const js = jetstream(nc);
  const run = Date.now();
  for (let i = 0; i < count; i++) {
    const id = `${prefix}_${run}_${i}`;
    await js.publish(subjects.job("batch", "summarize"), JSON.stringify({ id }), { msgID: id });
  }
  return { own, nc, js, run };
}

describe("intake", () => {
  it("a backlog at batch 1 keeps the slot busy: the next job starts as soon as a long job ends", async () => {
    const nc = await nats.connect("worker");
    const js = jetstream(nc);
    const run = Date.now();
    for (let i = 0; i < 3; i++) {
      const id = `gap_${run}_${i}`;
      await js.publish(subjects.job("batch", "summarize"), JSON.stringify({ id }), { msgID: id });
    }
    const spans: { start: number; end: number }[] = [];
    // Each job outlasts the idle pull (1 s), the case where a freed slot used to wait for that pull to expire.
    const handle = async (m: { ack(): void }) => {
      const start = performance.now();
      await new Promise((r) => setTimeout(r, 1_500));
      m.ack();
      spans.push({ start, end: performance.now() });
    };
    const intake = new Intake(nc, new SlotPool(1, 1), handle as never, createLogger("test", "silent"));
    await intake.start();
    const deadline = Date.now() + 20_000;
    while (spans.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await intake.stop();
    // Its idle pulls wait on the server until they expire: closing the connection withdraws them, so that they
    // cannot take the next test's jobs.
    await nc.close();
    expect(spans).toHaveLength(3);
    const gaps = spans.slice(1).map((s, i) => s.start - (spans[i] as { end: number }).end);
    expect(Math.max(...gaps), `gaps ${gaps.map(Math.round).join(", ")} ms`).toBeLessThan(200);
  });

  it("an interactive job starts at once while every batch slot is busy and a backlog waits", async () => {
    // A server of its own: the previous test's stopped intake may still have a pull in the air on this lane.
    const { own, nc, js, run } = await ownServerWithBacklog("worker-interactive", "busy", 3);
    const events: string[] = [];
    let releaseBatch!: () => void;
    const batchHeld = new Promise<void>((r) => {
      releaseBatch = r;
    });
    const handle = async (m: { subject: string; ack(): void }) => {
      const lane = m.subject.split(".")[2];
      events.push(`start ${lane}`);
      // The batch job holds its slot until the interactive job has run (or the test gives up).
      if (lane === "batch") await Promise.race([batchHeld, new Promise((r) => setTimeout(r, 8_000))]);
      m.ack();
      events.push(`end ${lane}`);
      if (lane === "interactive") releaseBatch();
    };
    // Idle pulls last 30 s here: the interactive job may not wait for one to expire, nor for the batch slot.
    const intake = new Intake(nc, new SlotPool(1, 1), handle as never, createLogger("test", "silent"), {
      idlePullMs: 30_000,
    });
    await intake.start();
    while (!events.includes("start batch")) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 200));
    const id = `person_${run}`;
    await js.publish(subjects.job("interactive", "chat"), JSON.stringify({ id }), { msgID: id });
    const deadline = Date.now() + 10_000;
    while (!events.includes("end interactive") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    releaseBatch();
    await intake.stop();
    await own.stop();
    expect(events.slice(0, 3)).toEqual(["start batch", "start interactive", "end interactive"]);
  }, 60_000);

  it("an interactive job starts at once all through a backlog, not only while the reserve's pull is fresh", async () => {
    // The interactive reserve waits in a pull that expires (idlePullMs); under a backlog the loop arms it again only
    // between batch jobs, so a person's job arriving after the pull expired waited for the next batch job to end
    // (bench:worker, stack, bench model: queue wait p95 290-450 ms under load against 5 ms idle).
    const { own, nc, js, run } = await ownServerWithBacklog("worker-reserve", "long", 12);
    const started = new Map<string, number>();
    let batchStarted = 0;
    const handle = async (m: { subject: string; data: Uint8Array; ack(): void }) => {
      const { id } = JSON.parse(new TextDecoder().decode(m.data)) as { id: string };
      started.set(id, performance.now());
      // Batch jobs outlast the reserve's pull (1 s, the least JetStream's client takes), so it expires inside one.
      if (m.subject.split(".")[2] === "batch") {
        batchStarted++;
        await new Promise((r) => setTimeout(r, 1_600));
      }
      m.ack();
    };
    const intake = new Intake(nc, new SlotPool(1, 1), handle as never, createLogger("test", "silent"), {
      idlePullMs: 1_000,
    });
    await intake.start();
    while (batchStarted === 0) await new Promise((r) => setTimeout(r, 10));
    const waits: number[] = [];
    // People's jobs one at a time, at offsets that sweep the batch jobs' and the pulls' cycles.
    for (let i = 0; i < 8; i++) {
      await new Promise((r) => setTimeout(r, 370));
      const id = `person_${run}_${i}`;
      const at = performance.now();
      await js.publish(subjects.job("interactive", "chat"), JSON.stringify({ id }), { msgID: id });
      while (!started.has(id) && performance.now() - at < 5_000) await new Promise((r) => setTimeout(r, 5));
      waits.push((started.get(id) ?? Number.POSITIVE_INFINITY) - at);
    }
    await intake.stop();
    await nc.close();
    await own.stop();
    expect(batchStarted, "batch jobs ran back to back throughout").toBeGreaterThanOrEqual(2);
    expect(Math.max(...waits), `waits ${waits.map(Math.round).join(", ")} ms`).toBeLessThan(150);
  }, 60_000);
});
