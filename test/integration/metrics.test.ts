import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readWorkers } from "../../producer/dashboard/snapshot.ts";
import type { JobChange } from "../../producer/recorder.ts";
import { type EventMessage, eventMsgId } from "../../schema/event.ts";
import { CONTROL_BUCKET, subjects } from "../../schema/subjects.ts";
import { startStack, type TestStack } from "../helpers/stack.ts";

let stack: TestStack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(() => stack?.stop());

/** The value of one sample in Prometheus text, e.g. sample(text, 'docket_jobs{state="succeeded",lane="batch"}'). */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

async function scrape(url: string): Promise<string> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
  return res.text();
}

describe("metrics", () => {
  it("the producer's /metrics counts jobs by state and lane, queue depth, latency and tokens, and moves after a job", async () => {
    const before = await scrape(`${stack.producer.url}/metrics`);
    expect(sample(before, 'docket_queue_pending{lane="batch"}')).toBe(0);
    expect(sample(before, "docket_nats_up")).toBe(1);
    expect(sample(before, 'docket_webhook_deliveries_total{outcome="delivered"}')).toBe(0);
    expect(sample(before, 'docket_jobs{state="succeeded",lane="batch"}')).toBeUndefined();

    const res = await fetch(`${stack.producer.url}/v1/jobs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        task: "summarize",
        lane: "batch",
        input: { text: "Rent is due monthly." },
        params: { maxTokens: 6 },
      }),
    });
    const { id } = (await res.json()) as { id: string };
    await stack.waitFor(id, ["succeeded"]);

    const after = await scrape(`${stack.producer.url}/metrics`);
    expect(sample(after, 'docket_jobs{state="succeeded",lane="batch"}')).toBe(1);
    expect(sample(after, 'docket_jobs_finished_total{lane="batch",task="summarize",state="succeeded"}')).toBe(1);
    expect(sample(after, 'docket_job_run_seconds_count{lane="batch",task="summarize"}')).toBe(1);
    expect(sample(after, 'docket_job_queue_wait_seconds_count{lane="batch"}')).toBe(1);
    expect(sample(after, 'docket_tokens_total{lane="batch",kind="completion"}')).toBeGreaterThan(0);
    expect(sample(after, 'docket_queue_pending{lane="batch"}')).toBe(0);
    expect(sample(after, 'docket_queue_ack_pending{lane="batch"}')).toBe(0);
    expect(after).toMatch(/^docket_producer_process_cpu_seconds_total /m);
  });

  it("a final event delivered again by another attempt counts once: jobs finished, tokens and the dashboard's throughput", async () => {
    const finished = 'docket_jobs_finished_total{lane="interactive",task="ask",state="succeeded"}';
    const completion = 'docket_tokens_total{lane="interactive",kind="completion"}';
    const before = await scrape(`${stack.producer.url}/metrics`);
    // The dashboard's throughput counts the recorder's final changes, as the metrics do.
    const finals: string[] = [];
    stack.producer.recorder.on("change", (c: JobChange) => c.state === "succeeded" && finals.push(c.jobId));

    const js = jetstream(await stack.nats.connect("events-twice"));
    const publish = (e: EventMessage) => js.publish(subjects.event(e.jobId, e.kind), JSON.stringify(e), { msgID: eventMsgId(e) });
    const completed = (jobId: string, attempt: number): EventMessage => ({
      v: 1,
      jobId,
      kind: "completed",
      attempt,
      workerId: "w-test",
      at: new Date().toISOString(),
      lane: "interactive",
      task: "ask",
      result: {
        text: "yes",
        usage: { promptTokens: 7, completionTokens: 3 },
        timings: { queueMs: 1, runMs: 2, tokensPerSecond: 1 },
        model: "m",
      },
    });
    const done = stack.waitFor("job_final_twice", ["succeeded"]);
    await publish(completed("job_final_twice", 1));
    await done;
    // Attempt 2 of the same job (its first ack was lost) ends too; the recorder applies events in order, so once
    // the next job's event is recorded the second final event has been applied.
    await publish(completed("job_final_twice", 2));
    const marker = stack.waitFor("job_final_marker", ["succeeded"]);
    await publish(completed("job_final_marker", 1));
    await marker;

    const after = await scrape(`${stack.producer.url}/metrics`);
    expect((sample(after, finished) ?? 0) - (sample(before, finished) ?? 0)).toBe(2);
    expect((sample(after, completion) ?? 0) - (sample(before, completion) ?? 0)).toBe(6);
    expect(finals).toEqual(["job_final_twice", "job_final_marker"]);
  });

  it("queue depth shows jobs waiting in a lane while no worker pulls", async () => {
    const idle = await startStack({ worker: false });
    try {
      for (let i = 0; i < 3; i++) {
        await fetch(`${idle.producer.url}/v1/jobs`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ task: "summarize", input: { text: `doc ${i}` } }),
        });
      }
      const text = await scrape(`${idle.producer.url}/metrics`);
      expect(sample(text, 'docket_queue_pending{lane="default"}')).toBe(3);
      expect(sample(text, 'docket_jobs{state="queued",lane="default"}')).toBe(3);
    } finally {
      await idle.stop();
    }
  });

  it("the worker serves /healthz, /readyz and /metrics with its model, batch size, load time and memory plan", async () => {
    const worker = stack.worker!;
    const url = worker.observability.url!;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ ready: true });

    const text = await scrape(`${url}/metrics`);
    const w = `worker="${worker.id}"`;
    expect(sample(text, `docket_worker_info{model="${worker.engine.modelName}",${w}}`)).toBe(1);
    // The adaptive batcher starts at 1 (of DOCKET_MAX_BATCH=4); the context holds one more sequence, the interactive reserve.
    expect(sample(text, `docket_worker_batch_size{${w}}`)).toBe(worker.status().batchSize);
    expect(worker.status().batchSize).toBe(1);
    expect(sample(text, `docket_worker_sequences{${w}}`)).toBe(5);
    expect(sample(text, `docket_worker_jobs_running{${w}}`)).toBe(0);
    expect(sample(text, `docket_worker_ready{${w}}`)).toBe(1);
    expect(sample(text, `docket_worker_model_load_seconds{${w}}`)).toBeGreaterThan(0);
    expect(sample(text, `docket_worker_memory_plan_bytes{part="model",${w}}`)).toBeGreaterThan(100_000);
    expect(sample(text, `docket_worker_memory_plan_bytes{part="budget",${w}}`)).toBe(50e9);
    expect(text).toMatch(/^docket_worker_tokens_per_second\{/m);
    expect(sample(text, `docket_worker_queue_pending{lane="batch",${w}}`)).toBe(0);

    // The batcher's setter shows up on the next scrape.
    worker.observability.metrics.batchSize.set(3);
    expect(sample(await scrape(`${url}/metrics`), `docket_worker_batch_size{${w}}`)).toBe(3);
    worker.observability.metrics.batchSize.set(worker.status().batchSize);
  });

  it("the worker counts document-prefix reuse in /metrics and its heartbeat: two tasks on one document evaluate it once", async () => {
    const worker = stack.worker!;
    const url = worker.observability.url!;
    const w = `worker="${worker.id}"`;
    const before = await scrape(`${url}/metrics`);
    const at = (text: string, source: string) => sample(text, `docket_worker_prefix_lookups_total{source="${source}",${w}}`) ?? 0;
    const text = "Referral letter. The patient, born 1961, is referred for a cardiology review of exertional chest pain. ".repeat(
      6,
    );
    for (const question of ["Who is referred?", "Why?"]) {
      const res = await fetch(`${stack.producer.url}/v1/jobs`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ task: "ask", input: { text }, params: { question, maxTokens: 4 } }),
      });
      const { id } = (await res.json()) as { id: string };
      expect(await stack.waitFor(id, ["succeeded", "failed"])).toBe("succeeded");
    }
    const after = await scrape(`${url}/metrics`);
    expect(at(after, "evaluated") - at(before, "evaluated")).toBe(1);
    expect(at(after, "live") + at(after, "checkpoint") - at(before, "live") - at(before, "checkpoint")).toBe(1);
    const saved = (t: string) => sample(t, `docket_worker_prefix_tokens_saved_total{${w}}`) ?? 0;
    expect(saved(after) - saved(before)).toBeGreaterThan(500);
    // The dashboard reads the same figures from the heartbeat (every 5 s).
    const kv = await new Kvm(worker.nc).open(CONTROL_BUCKET);
    const deadline = Date.now() + 12_000;
    for (;;) {
      const [view] = await readWorkers(kv);
      if ((view?.prefix?.hits ?? 0) >= 1) {
        expect(view?.prefix?.tokensSaved).toBeGreaterThan(500);
        break;
      }
      expect(Date.now()).toBeLessThan(deadline);
      await new Promise((r) => setTimeout(r, 250));
    }
  }, 30_000);

  it("a worker's /readyz says 503 while it has lost NATS, and 200 again after a restart", async () => {
    const url = stack.worker!.observability.url!;
    const nc = stack.worker!.nc;
    const statuses = nc.status()[Symbol.asyncIterator]();
    const next = async (type: string) => {
      for (;;) {
        const s = await statuses.next();
        if (s.done || s.value.type === type) return;
      }
    };
    const disconnected = next("disconnect");
    await stack.nats.server.stop();
    await disconnected;
    const down = await fetch(`${url}/readyz`);
    expect(down.status).toBe(503);
    expect(await down.json()).toEqual({ ready: false, reason: "NATS disconnected" });
    const reconnected = next("reconnect");
    await stack.nats.restart();
    await reconnected;
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
  });
});
