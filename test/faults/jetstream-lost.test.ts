import { once } from "node:events";
import { jetstreamManager } from "@nats-io/jetstream";
import { afterEach, describe, expect, it } from "vitest";
import type { CheckResult } from "../../producer/jetstream-watch.ts";
import { createLogger } from "../../runtime/log.ts";
import { JOBS_STREAM, RECORDER_CONSUMER } from "../../schema/subjects.ts";
import { startWorker, type Worker } from "../../worker/worker.ts";
import { ledger } from "../helpers/jobs.ts";
import { startStack, type TestStack } from "../helpers/stack.ts";

let stack: TestStack | undefined;
let worker: Worker | undefined;
afterEach(async () => {
  await worker?.close(0);
  worker = undefined;
  await stack?.stop();
  stack = undefined;
});

async function readyz(s: TestStack): Promise<{ status: number; body: { ready: boolean; reason?: string } }> {
  const res = await fetch(`${s.producer.url}/readyz`);
  return { status: res.status, body: (await res.json()) as { ready: boolean; reason?: string } };
}

async function submit(s: TestStack, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const res = await fetch(`${s.producer.url}/v1/jobs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ task: "summarize", lane: "batch", input: { text: `memo ${i}` }, params: { maxTokens: 4 } }),
    });
    expect(res.status).toBe(202);
    ids.push(((await res.json()) as { id: string }).id);
  }
  return ids;
}

/** Starts a worker on the stack's NATS (the stacks here start without one, so their jobs stay queued). */
async function addWorker(s: TestStack): Promise<Worker> {
  worker = await startWorker(s.config, createLogger("test", "silent"));
  return worker;
}

describe("a JetStream store lost under a running stack", () => {
  it("DOCKET_JOBS deleted: /readyz says what is missing until a check re-provisions it and republishes the queued jobs, which complete", async () => {
    // No periodic check during the test: the loss stays visible until the test runs the check itself.
    stack = await startStack({ worker: false, env: { DOCKET_JETSTREAM_CHECK_SECONDS: "3600" } });
    const s = stack;
    const ids = await submit(s, 5);
    expect(await readyz(s)).toEqual({ status: 200, body: { ready: true } });

    const jsm = await jetstreamManager(await s.nats.connect("operator"));
    await jsm.streams.delete(JOBS_STREAM);
    const lost = await readyz(s);
    expect(lost.status).toBe(503);
    expect(lost.body.ready).toBe(false);
    expect(lost.body.reason).toContain(`stream ${JOBS_STREAM}`);
    expect(lost.body.reason).toContain(`consumer ${JOBS_STREAM}/docket-workers-batch`);

    const result = await s.producer.jetstreamWatch.check();
    expect(result).toMatchObject({
      provisioned: true,
      lost: { queued: 5, running: 0, unknown: 0 },
      republished: 5,
    } satisfies Partial<CheckResult>);
    expect(result?.missing).toContain(`stream ${JOBS_STREAM}`);
    expect(await readyz(s)).toEqual({ status: 200, body: { ready: true } });
    expect((await jsm.streams.info(JOBS_STREAM)).state.messages).toBe(5);
    // A second check finds nothing to do: the new stream is now the one SQLite knows.
    expect(await s.producer.jetstreamWatch.check()).toEqual({ missing: [], provisioned: false, republished: 0 });

    await addWorker(s);
    for (const id of ids) await s.waitFor(id, ["succeeded"]);
    const { missing, duplicated } = ledger(s.producer.database, ids);
    expect(missing).toEqual([]);
    expect(duplicated).toEqual([]);
  });

  it("nats-server restarted on an empty store: on reconnect the producer provisions everything again and republishes a queued batch, whose jobs complete", async () => {
    stack = await startStack({ worker: false, env: { DOCKET_JETSTREAM_CHECK_SECONDS: "3600" } });
    const s = stack;
    const created = await fetch(`${s.producer.url}/v1/batches`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        task: "summarize",
        params: { maxTokens: 4 },
        items: Array.from({ length: 12 }, (_, i) => ({ text: `document ${i}`, customId: `d${i}` })),
      }),
    });
    expect(created.status).toBe(202);
    const batchId = ((await created.json()) as { id: string }).id;

    const repaired = once(s.producer.jetstreamWatch, "repaired") as Promise<[CheckResult]>;
    await s.nats.restart({ wipe: true });
    const [result] = await repaired;
    expect(result.provisioned).toBe(true);
    expect(result.missing).toEqual(
      expect.arrayContaining([`stream ${JOBS_STREAM}`, `consumer DOCKET_EVENTS/${RECORDER_CONSUMER}`]),
    );
    expect(result.missing).toEqual(expect.arrayContaining(["KV bucket docket-control", "object store docket-docs"]));
    expect(result.lost).toEqual({ queued: 12, running: 0, unknown: 0 });
    expect(result.republished).toBe(12);
    expect(await readyz(s)).toEqual({ status: 200, body: { ready: true } });

    await addWorker(s);
    const ids = (
      s.producer.database.sqlite.prepare("select id from jobs where batch_id = ?").all(batchId) as { id: string }[]
    ).map((r) => r.id);
    expect(ids).toHaveLength(12);
    for (const id of ids) await s.waitFor(id, ["succeeded"]);
    const { missing, duplicated } = ledger(s.producer.database, ids);
    expect(missing).toEqual([]);
    expect(duplicated).toEqual([]);
    const batch = (await (await fetch(`${s.producer.url}/v1/batches/${batchId}`)).json()) as { state: string };
    expect(batch.state).toBe("completed");
  });

  it("checks periodically: a deleted stream is provisioned again and its jobs republished without a reconnect", async () => {
    stack = await startStack({ worker: false, env: { DOCKET_JETSTREAM_CHECK_SECONDS: "1" } });
    const s = stack;
    await submit(s, 3);
    const repaired = once(s.producer.jetstreamWatch, "repaired") as Promise<[CheckResult]>;
    await (await jetstreamManager(await s.nats.connect("operator"))).streams.delete(JOBS_STREAM);
    const [result] = await repaired;
    expect(result).toMatchObject({ provisioned: true, lost: { queued: 3, running: 0, unknown: 0 }, republished: 3 });
  });

  it("DOCKET_JOBS deleted under a worker of a named model: its worker creates the model's consumers again and runs the jobs naming it", async () => {
    stack = await startStack({ worker: false, env: { DOCKET_JETSTREAM_CHECK_SECONDS: "3600" } });
    const s = stack;
    worker = await startWorker(
      { ...s.config, DOCKET_MODEL_NAME: "triage", DOCKET_DEFAULT_MODEL: "analysis" },
      createLogger("test", "silent"),
    );
    const jsm = await jetstreamManager(await s.nats.connect("operator"));
    expect((await jsm.consumers.info(JOBS_STREAM, "docket-workers-batch-triage")).name).toBe("docket-workers-batch-triage");
    await jsm.streams.delete(JOBS_STREAM);
    // Submitted while the stream is gone: the rows wait for the republisher.
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${s.producer.url}/v1/jobs`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          task: "summarize",
          lane: "batch",
          model: "triage",
          input: { text: `memo ${i}` },
          params: { maxTokens: 4 },
        }),
      });
      expect(res.status).toBe(202);
      ids.push(((await res.json()) as { id: string }).id);
    }
    // Provisioning restores the default consumers only; the model's are its worker's to create again.
    expect(await s.producer.jetstreamWatch.check()).toMatchObject({ provisioned: true });
    expect(await s.producer.publisher.sweepNow()).toEqual({ published: 3, complete: true });
    for (const id of ids) await s.waitFor(id, ["succeeded"]);
    expect((await jsm.consumers.info(JOBS_STREAM, "docket-workers-batch-triage")).name).toBe("docket-workers-batch-triage");
    expect(ids.map((id) => s.producer.store.get(id)?.result?.model)).toEqual(["triage", "triage", "triage"]);
  });
});
