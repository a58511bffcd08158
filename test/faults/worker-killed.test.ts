import { jetstreamManager } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EVENTS_STREAM, subjects } from "../../schema/subjects.ts";
import { type DocketProcess, spawnDocket } from "../helpers/processes.ts";
import { startStack, type TestStack } from "../helpers/stack.ts";

// Long generations (thousands of tokens) and a short ack wait, so a dead worker's job comes back within seconds.
// Two sequences (one kept for the interactive lane): the setting under which a redelivered default-lane job
// was never pulled before intake rotated its idle pulls.
const WORKER_ENV = {
  DOCKET_GPU: "false",
  DOCKET_THREADS: "1",
  DOCKET_MAX_BATCH: "2",
  DOCKET_CONTEXT_SIZE: "4096",
  DOCKET_MAX_TOKENS: "3500",
  DOCKET_ACK_WAIT_SECONDS: "2",
  DOCKET_LOG_LEVEL: "warn",
};

let stack: TestStack;
const workers: DocketProcess[] = [];
beforeAll(async () => {
  stack = await startStack({ worker: false, env: { DOCKET_ACK_WAIT_SECONDS: "2" } });
});
afterAll(async () => {
  for (const w of workers) await w.kill("SIGKILL");
  await stack?.stop();
});

function startWorker(id: string): DocketProcess {
  const w = spawnDocket("worker/main.ts", { ...WORKER_ENV, NATS_URL: stack.nats.url, DOCKET_WORKER_ID: id });
  workers.push(w);
  return w;
}

/** Counts the events DOCKET_EVENTS holds for a job, by kind. */
async function storedEvents(jobId: string): Promise<Record<string, number>> {
  const jsm = await jetstreamManager(stack.producer.nc);
  const info = await jsm.streams.info(EVENTS_STREAM, { subjects_filter: subjects.jobEvents(jobId) });
  const counts: Record<string, number> = {};
  for (const [subject, n] of Object.entries(info.state.subjects ?? {})) counts[subject.split(".").pop() as string] = n;
  return counts;
}

describe("a worker killed with SIGKILL in the middle of a generation", () => {
  it("its job is redelivered to another worker and completes exactly once, on attempt 2", async () => {
    const a = startWorker("worker-a");
    await a.ready;
    const res = await fetch(`${stack.producer.url}/v1/jobs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      // The grammar forces a long generation: the random model cannot end it early before the kill.
      body: JSON.stringify({
        task: "extract",
        input: { text: "A long memo about rent." },
        params: {
          schema: { type: "object", properties: { a: { type: "string", minLength: 1000, maxLength: 1000 } }, required: ["a"] },
        },
      }),
    });
    const { id } = (await res.json()) as { id: string };
    const first = await stack.waitFor(id, ["running", "succeeded", "failed"], 30_000);
    expect(first, JSON.stringify(stack.producer.store.get(id)?.error)).toBe("running");
    expect(await a.kill("SIGKILL")).toBe("SIGKILL");
    expect(stack.producer.store.get(id)?.state).toBe("running");

    const b = startWorker("worker-b");
    await b.ready;
    expect(await stack.waitFor(id, ["succeeded", "failed"], 45_000)).toBe("succeeded");

    const row = stack.producer.store.get(id);
    expect(row).toMatchObject({ state: "succeeded", attempts: 2, workerId: "worker-b" });
    expect(row?.result?.usage.completionTokens).toBeGreaterThan(0);
    const applied = stack.producer.database.sqlite
      .prepare("select kind, attempt, worker_id as workerId from job_events where job_id = ? order by attempt, kind")
      .all(id);
    expect(applied).toEqual([
      { kind: "started", attempt: 1, workerId: "worker-a" },
      { kind: "completed", attempt: 2, workerId: "worker-b" },
      { kind: "started", attempt: 2, workerId: "worker-b" },
    ]);
    const stored = await storedEvents(id);
    expect(stored.completed).toBe(1);
    expect(stored.failed).toBeUndefined();
    expect(stored.started).toBe(2);
  });
});
