import { execFile } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import OpenAI, { toFile } from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ModelRow } from "../../producer/dashboard/snapshot.ts";
import { createLogger } from "../../runtime/log.ts";
import type { JobView } from "../../schema/api.ts";
import { JOBS_STREAM, subjects } from "../../schema/subjects.ts";
import { ensureDemoModel, TEST_MODEL } from "../../tools/model/demo-model.ts";
import { startWorker, type Worker } from "../../worker/worker.ts";
import { tinyJob } from "../helpers/jobs.ts";
import { startStack, type TestStack, testConfig } from "../helpers/stack.ts";

/** A second generated model: another seed and name, so its results say which model answered. */
const TRIAGE_MODEL = { ...TEST_MODEL, seed: 2, name: "docket-demo-triage" };

const log = createLogger("test", "silent");
let stack: TestStack;
let tiny: string;
let triage: string;
const workers: Worker[] = [];

/** A worker on the stack's NATS; its id names it in events (job.workerId). */
async function addWorker(id: string, env: Record<string, string>): Promise<Worker> {
  const w = await startWorker(
    testConfig({ NATS_URL: stack.nats.url, DOCKET_WORKER_ID: id, DOCKET_DEFAULT_MODEL: "docket-demo-tiny", ...env }),
    log,
  );
  workers.push(w);
  return w;
}

async function stopWorker(w: Worker): Promise<void> {
  workers.splice(workers.indexOf(w), 1);
  await w.close(0);
}

beforeAll(async () => {
  [tiny, triage] = await Promise.all([ensureDemoModel(TEST_MODEL), ensureDemoModel(TRIAGE_MODEL)]);
  // One deployment, two models: the tiny model is the default one, the triage model serves jobs that name it.
  stack = await startStack({ worker: false, env: { DOCKET_DEFAULT_MODEL: "docket-demo-tiny" } });
  await addWorker("w-tiny", { DOCKET_MODEL: tiny });
  await addWorker("w-triage", { DOCKET_MODEL: triage });
}, 60_000);
afterAll(async () => {
  for (const w of [...workers]) await w.close(0);
  await stack?.stop();
});

async function submit(body: Record<string, unknown>): Promise<JobView> {
  const res = await fetch(`${stack.producer.url}/v1/jobs`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  expect(res.status, await res.clone().text()).toBe(202);
  return (await res.json()) as JobView;
}

const view = async (id: string) => (await (await fetch(`${stack.producer.url}/v1/jobs/${id}`)).json()) as JobView;
const modelIds = async () =>
  ((await (await fetch(`${stack.producer.url}/openai/v1/models`)).json()) as { data: { id: string }[] }).data.map((m) => m.id);

describe("a deployment serving two models (two generated models, one worker each)", () => {
  it("jobs naming a model run only on its worker; jobs naming none run on the default model's", async () => {
    const bodies = [
      ...Array.from({ length: 4 }, (_, i) => tinyJob(i, { model: "docket-demo-triage" })),
      ...Array.from({ length: 4 }, (_, i) => tinyJob(i, { model: "docket-demo-tiny" })),
      ...Array.from({ length: 4 }, (_, i) => tinyJob(i)),
    ];
    const jobs = [];
    for (const body of bodies) jobs.push(await submit(body));
    for (const job of jobs) expect(await stack.waitFor(job.id, ["succeeded", "failed"])).toBe("succeeded");
    const ran = jobs.map((job) => {
      const row = stack.producer.store.get(job.id);
      return { named: job.model, model: row?.result?.model, worker: row?.workerId };
    });
    expect(ran.slice(0, 4)).toEqual(
      Array(4).fill({ named: "docket-demo-triage", model: "docket-demo-triage", worker: "w-triage" }),
    );
    expect(ran.slice(4, 8)).toEqual(Array(4).fill({ named: "docket-demo-tiny", model: "docket-demo-tiny", worker: "w-tiny" }));
    expect(ran.slice(8)).toEqual(Array(4).fill({ named: null, model: "docket-demo-tiny", worker: "w-tiny" }));
  }, 60_000);

  it("GET /openai/v1/models lists the models live workers serve, and docket", async () => {
    expect(await modelIds()).toEqual(["docket", "docket-demo-tiny", "docket-demo-triage"]);
  });

  it("an OpenAI batch routes each line by its body.model: docket is the default model", async () => {
    const client = new OpenAI({ apiKey: "unused", baseURL: `${stack.producer.url}/openai/v1`, maxRetries: 0 });
    const line = (id: string, model: string) =>
      JSON.stringify({
        custom_id: id,
        method: "POST",
        url: "/v1/chat/completions",
        body: { model, messages: [{ role: "user", content: id }], max_tokens: 1 },
      });
    const lines = [line("a", "docket"), line("b", "docket-demo-triage"), line("c", "Docket-Demo-Tiny")];
    const file = await client.files.create({
      file: await toFile(Buffer.from(`${lines.join("\n")}\n`), "in.jsonl"),
      purpose: "batch",
    });
    const batch = await client.batches.create({
      input_file_id: file.id,
      endpoint: "/v1/chat/completions",
      completion_window: "24h",
    });
    const rows = () =>
      stack.producer.database.sqlite.prepare("select id, custom_id c from jobs where batch_id = ? order by c").all(batch.id) as {
        id: string;
        c: string;
      }[];
    expect(rows()).toHaveLength(3);
    for (const r of rows()) expect(await stack.waitFor(r.id, ["succeeded", "failed"])).toBe("succeeded");
    expect(rows().map((r) => stack.producer.store.get(r.id)?.result?.model)).toEqual([
      "docket-demo-tiny",
      "docket-demo-triage",
      "docket-demo-tiny",
    ]);
  }, 60_000);

  it("docket submit --model runs a folder on that model; tasks on one document may each name their model", async () => {
    const folder = join(stack.dir, "inbox");
    await mkdir(folder, { recursive: true });
    await writeFile(join(folder, "a.txt"), "The tenant pays rent monthly.");
    await writeFile(join(folder, "b.txt"), "Neither party discloses the other's secrets.");
    const bin = join(import.meta.dirname, "..", "..", "bin", "docket.js");
    const args = ["submit", folder, "--model", "docket-demo-triage", "--params", '{"maxTokens":2}'];
    const submitted = await new Promise<string>((resolve, reject) =>
      execFile(
        process.execPath,
        [bin, ...args],
        { env: { ...process.env, DOCKET_URL: stack.producer.url, DOCKET_API_KEY: "" } },
        (err, out) => (err ? reject(err) : resolve(out.trim())),
      ),
    );
    const doc = (await (
      await fetch(`${stack.producer.url}/v1/documents`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ text: "The lessee shall pay rent monthly." }),
      })
    ).json()) as { id: string };
    const tasks = (await (
      await fetch(`${stack.producer.url}/v1/documents/${doc.id}/jobs`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          model: "docket-demo-tiny",
          params: { maxTokens: 2 },
          tasks: [
            { task: "summarize" },
            { task: "classify", model: "docket-demo-triage", params: { labels: ["lease", "nda"], maxTokens: 16 } },
          ],
        }),
      })
    ).json()) as { id: string };
    const modelsOf = async (batchId: string) => {
      const ids = (
        stack.producer.database.sqlite.prepare("select id from jobs where batch_id = ? order by batch_index").all(batchId) as {
          id: string;
        }[]
      ).map((r) => r.id);
      for (const id of ids)
        expect(await stack.waitFor(id, ["succeeded", "failed"]), JSON.stringify(stack.producer.store.get(id)?.error)).toBe(
          "succeeded",
        );
      return ids.map((id) => stack.producer.store.get(id)?.result?.model);
    };
    expect(await modelsOf(submitted)).toEqual(["docket-demo-triage", "docket-demo-triage"]);
    expect(await modelsOf(tasks.id)).toEqual(["docket-demo-tiny", "docket-demo-triage"]);
  }, 60_000);

  it("a model is named as its GGUF names it or normalized; a name that cannot be a model name is 400", async () => {
    const job = await submit(tinyJob(0, { model: "Docket-Demo-Triage" }));
    expect(job.model).toBe("docket-demo-triage");
    expect(await stack.waitFor(job.id, ["succeeded", "failed"])).toBe("succeeded");
    const res = await fetch(`${stack.producer.url}/v1/jobs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(tinyJob(0, { model: "..." })),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { field: string } }).error.field).toBe("model");
  });

  it("a job for a model no worker serves stays queued with a visible hint, and runs once a worker for it starts", async () => {
    const job = await submit(tinyJob(0, { model: "analysis" }));
    // The hint is there from the answer to the submission on, in the job view, the list and the dashboard.
    const hint = "no worker serves model analysis (live workers serve docket-demo-tiny, docket-demo-triage)";
    expect(job.waiting).toContain(hint);
    await new Promise((r) => setTimeout(r, 1_500));
    // Its place in line, and no times: nothing runs it until a worker for its model starts.
    expect(await view(job.id)).toMatchObject({
      state: "queued",
      model: "analysis",
      waiting: expect.stringContaining(hint),
      queue: { position: 1, estimatedStartAt: null, estimatedFinishAt: null },
    });
    const listed = (await (await fetch(`${stack.producer.url}/v1/jobs?model=analysis`)).json()) as { data: JobView[] };
    expect(listed.data.map((j) => [j.id, j.waiting])).toEqual([[job.id, expect.stringContaining(hint)]]);
    const snapshot = (await (await fetch(`${stack.producer.url}/dashboard/snapshot`)).json()) as {
      models: ModelRow[];
      recentJobs: { id: string; waiting?: string }[];
    };
    expect(snapshot.models.find((m) => m.model === "analysis")).toEqual({
      model: "analysis",
      workers: 0,
      queued: 1,
      waiting: expect.stringContaining(hint),
    });
    expect(snapshot.models.find((m) => m.model === null)).toMatchObject({ workers: 1, queued: 0 });
    expect(snapshot.recentJobs.find((j) => j.id === job.id)?.waiting).toContain(hint);
    const detail = (await (await fetch(`${stack.producer.url}/dashboard/jobs/${job.id}`)).json()) as { job: JobView };
    expect(detail.job.waiting).toContain(hint);

    // A worker named analysis (DOCKET_MODEL_NAME; here the tiny model's file) creates its consumers and takes the job.
    const analysis = await addWorker("w-analysis", { DOCKET_MODEL: tiny, DOCKET_MODEL_NAME: "analysis" });
    expect(await stack.waitFor(job.id, ["succeeded", "failed"])).toBe("succeeded");
    const done = await view(job.id);
    expect(done.result?.model).toBe("analysis");
    expect(done.waiting).toBeUndefined();
    expect(await modelIds()).toEqual(["docket", "analysis", "docket-demo-tiny", "docket-demo-triage"]);
    // A worker that stops cleanly deletes its heartbeat: its model leaves the list at once.
    await stopWorker(analysis);
    await new Promise((r) => setTimeout(r, 200));
    expect(await modelIds()).toEqual(["docket", "docket-demo-tiny", "docket-demo-triage"]);
  }, 60_000);

  it("jobs for the default model wait visibly while no worker serves it; named or not, by the API or on its subject, they run on its worker", async () => {
    const w = workers.find((x) => x.id === "w-tiny") as Worker;
    await stopWorker(w);
    await new Promise((r) => setTimeout(r, 200));
    const job = await submit(tinyJob(0));
    expect(job.waiting).toContain("no worker serves the default model (DOCKET_DEFAULT_MODEL=docket-demo-tiny)");
    // Named by the API, the default model's job travels on the subject without a token, as the one naming none.
    const named = await submit(tinyJob(1, { model: "docket-demo-tiny" }));
    expect(named.waiting).toContain("no worker serves model docket-demo-tiny");
    const nc = await stack.nats.connect("publisher");
    const jsm = await jetstreamManager(nc);
    const stored = await jsm.streams.getMessage(JOBS_STREAM, { last_by_subj: "docket.jobs.batch.chat" });
    expect(stored?.json<{ id: string; model: string }>()).toMatchObject({ id: named.id, model: "docket-demo-tiny" });
    // Another NATS client may publish on the model's own subject: the default model's workers read it too.
    const raw = {
      v: 1,
      id: "job_raw_default_named",
      lane: "batch",
      task: "chat",
      model: "docket-demo-tiny",
      input: {},
      params: { maxTokens: 1, messages: [{ role: "user", content: "hi" }] },
      submittedAt: new Date().toISOString(),
    };
    await jetstream(nc).publish(subjects.job("batch", "chat", "docket-demo-tiny"), JSON.stringify(raw), { msgID: raw.id });
    // The triage worker takes none of them: it serves its own model only.
    await new Promise((r) => setTimeout(r, 1_500));
    expect((await view(job.id)).state).toBe("queued");
    expect((await view(named.id)).state).toBe("queued");
    await addWorker("w-tiny", { DOCKET_MODEL: tiny });
    for (const id of [job.id, named.id, raw.id]) {
      expect(await stack.waitFor(id, ["succeeded", "failed"])).toBe("succeeded");
      expect(stack.producer.store.get(id)?.workerId).toBe("w-tiny");
    }
    expect(stack.producer.store.get(raw.id)?.model).toBe("docket-demo-tiny");
  }, 60_000);

  it("a worker whose model cannot load falls back to DOCKET_FALLBACK_MODEL and keeps serving its model name", async () => {
    // An interrupted download: the first half of a real model file.
    const broken = join(stack.dir, "broken.gguf");
    const bytes = await readFile(tiny);
    await writeFile(broken, bytes.subarray(0, bytes.length / 2));
    const w = await addWorker("w-big", { DOCKET_MODEL: broken, DOCKET_MODEL_NAME: "big", DOCKET_FALLBACK_MODEL: triage });
    expect(w.status()).toMatchObject({ servedModel: "big", model: "docket-demo-triage", servesDefault: false });
    const job = await submit(tinyJob(0, { model: "big" }));
    expect(await stack.waitFor(job.id, ["succeeded", "failed"])).toBe("succeeded");
    // The result says which model answered: the fallback.
    expect(stack.producer.store.get(job.id)?.result?.model).toBe("docket-demo-triage");
    expect(stack.producer.store.get(job.id)?.workerId).toBe("w-big");
    expect(await modelIds()).toContain("big");
    await stopWorker(w);
  }, 60_000);
});
