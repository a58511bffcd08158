/**
 * `npm run soak [-- --jobs N]`: N jobs (default 10,000) through the whole system, as separate processes
 * (its own nats-server, a producer, a worker), with the worker restarted twice on the way: killed with
 * SIGKILL after a third of the jobs finished, stopped with SIGTERM after two thirds. Prints submitted,
 * succeeded, failed, lost and duplicated jobs; exits 1 unless lost and duplicates are 0.
 * Jobs are one-token chats on the generated demo model unless DOCKET_MODEL says otherwise.
 */
import { type ChildProcess, fork } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import Database from "better-sqlite3";
import { ensureDemoModel, TEST_MODEL } from "./model/demo-model.ts";
import { freePort, startLocalJetStream } from "./nats-server.ts";

const { values } = parseArgs({
  options: { jobs: { type: "string", default: "10000" }, concurrency: { type: "string", default: "8" } },
});
const total = Number(values.jobs);
const concurrency = Number(values.concurrency);
const root = resolve(import.meta.dirname, "..");
const say = (line: string) => process.stdout.write(`[soak] ${line}\n`);
/** With no finished job for this long, the run stops and counts what is missing as lost. */
const STALL_MS = 90_000;

const dir = mkdtempSync(join(tmpdir(), "docket-soak-"));
const apiPort = await freePort();
const nats = await startLocalJetStream(join(dir, "nats"));
const env = {
  ...process.env,
  NATS_URL: nats.url,
  DOCKET_DB: join(dir, "docket.db"),
  DOCKET_PORT: String(apiPort),
  DOCKET_LOG_LEVEL: process.env.DOCKET_LOG_LEVEL ?? "warn",
  DOCKET_LOG_FORMAT: "json",
  DOCKET_MODEL: process.env.DOCKET_MODEL || (await ensureDemoModel(TEST_MODEL)),
  // A killed worker's jobs come back after the ack wait: keep it short.
  DOCKET_ACK_WAIT_SECONDS: process.env.DOCKET_ACK_WAIT_SECONDS ?? process.env.DOCKET_ACK_WAIT ?? "5",
  DOCKET_MAX_BATCH: process.env.DOCKET_MAX_BATCH ?? "4",
  DOCKET_CONTEXT_SIZE: process.env.DOCKET_CONTEXT_SIZE ?? "256",
  DOCKET_THREADS: process.env.DOCKET_THREADS ?? "1",
  DOCKET_GPU: process.env.DOCKET_GPU ?? "false",
  // A free monitor port per worker: a restarted worker, or another run beside this one, never collides on 9090.
  DOCKET_WORKER_PORT: process.env.DOCKET_WORKER_PORT ?? "0",
};

function launch(entry: string, name: string): { child: ChildProcess; ready: Promise<void> } {
  const child = fork(join(root, entry), [], {
    cwd: root,
    execArgv: ["--import", import.meta.resolve("tsx")],
    env: { ...env, DOCKET_WORKER_ID: name },
    stdio: ["ignore", "ignore", "inherit", "ipc"],
  });
  const ready = new Promise<void>((res, rej) => {
    child.on("message", (m: { ready?: string }) => m.ready && res());
    child.once("exit", (code, signal) => rej(new Error(`${name} exited (${code ?? signal}) before it was ready`)));
  });
  ready.catch(() => undefined);
  return { child, ready };
}
const stop = (child: ChildProcess, signal: NodeJS.Signals) =>
  new Promise<void>((res) => {
    if (child.exitCode !== null || child.signalCode !== null) return res();
    child.once("exit", () => res());
    child.kill(signal);
  });

const producer = launch("producer/main.ts", "producer");
await producer.ready;
let worker = launch("worker/main.ts", "worker-1");
await worker.ready;
const db = new Database(env.DOCKET_DB, { readonly: true, fileMustExist: true });
const finished = db.prepare("select count(*) n from jobs where state in ('succeeded','failed','cancelled')");
const countFinished = () => (finished.get() as { n: number }).n;

const started = Date.now();
let submitted = 0;
let next = 0;
async function submitLane(): Promise<void> {
  while (next < total) {
    const i = next++;
    const body = JSON.stringify({
      task: "chat",
      lane: "batch",
      input: {},
      params: { maxTokens: 1, messages: [{ role: "user", content: `soak ${i}` }] },
    });
    for (let tries = 0; ; tries++) {
      const res = await fetch(`http://127.0.0.1:${apiPort}/v1/jobs`, {
        method: "POST",
        headers: { "content-type": "application/json", "idempotency-key": `soak-${i}` },
        body,
      }).catch((err: Error) => err);
      if (!(res instanceof Error) && (res.status === 202 || res.status === 200)) break;
      // 429 (queue full) or a connection error: the Idempotency-Key makes the retry safe.
      if (tries > 100) throw new Error(`job ${i} could not be submitted`);
      await new Promise((r) => setTimeout(r, 100));
    }
    submitted++;
  }
}
const submitting = Promise.all(Array.from({ length: concurrency }, submitLane));

const restarts: { at: number; signal: NodeJS.Signals }[] = [
  { at: Math.floor(total / 3), signal: "SIGKILL" },
  { at: Math.floor((2 * total) / 3), signal: "SIGTERM" },
];
let done = 0;
let lastProgress = Date.now();
let lastReport = 0;
while (done < total && Date.now() - lastProgress < STALL_MS) {
  await new Promise((r) => setTimeout(r, 250));
  const now = countFinished();
  if (now > done) lastProgress = Date.now();
  done = now;
  const restart = restarts[0];
  if (restart && done >= restart.at) {
    restarts.shift();
    say(`${done} finished: restarting the worker (${restart.signal})`);
    await stop(worker.child, restart.signal);
    worker = launch("worker/main.ts", `worker-${3 - restarts.length}`);
    await worker.ready;
  }
  if (Date.now() - lastReport > 10_000) {
    lastReport = Date.now();
    say(`${submitted} submitted, ${done} finished, ${Math.round((done / (Date.now() - started)) * 1000)} jobs/s`);
  }
}
await submitting.catch((err: Error) => say(err.message));
const seconds = (Date.now() - started) / 1000;

const states = Object.fromEntries(
  (db.prepare("select state, count(*) n from jobs group by state").all() as { state: string; n: number }[]).map((r) => [
    r.state,
    r.n,
  ]),
);
const duplicates = (
  db
    .prepare(
      "select count(*) n from (select job_id from job_events where kind in ('completed','failed') group by job_id having count(*) > 1)",
    )
    .get() as { n: number }
).n;
const succeeded = states.succeeded ?? 0;
const failed = (states.failed ?? 0) + (states.cancelled ?? 0);
const lost = total - succeeded - failed;
db.close();

await stop(worker.child, "SIGTERM");
await stop(producer.child, "SIGTERM");
await nats.stop();
rmSync(dir, { recursive: true, force: true });

say(`jobs submitted ${submitted} / ${total}`);
say(`succeeded ${succeeded}`);
say(`failed ${failed}`);
say(`lost ${lost}`);
say(`duplicates ${duplicates}`);
say(`worker restarts ${2 - restarts.length}, ${seconds.toFixed(1)} s, ${Math.round(total / seconds)} jobs/s`);
const ok = lost === 0 && duplicates === 0 && restarts.length === 0;
say(ok ? "verdict: PASS" : "verdict: FAIL");
process.exit(ok ? 0 : 1);
