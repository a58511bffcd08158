import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freePort, isListening } from "../../tools/nats-server.ts";

const root = resolve(import.meta.dirname, "../..");
let child: ChildProcess | undefined;
let group: number | undefined;
let natsPid: number | undefined;
let dir: string | undefined;

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

afterAll(async () => {
  if (child && child.exitCode === null) child.kill("SIGKILL");
  if (group && alive(group)) process.kill(-group, "SIGKILL");
  if (natsPid && alive(natsPid)) process.kill(natsPid, "SIGKILL");
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Everything `proc` prints from now on; waitFor resolves with the first match of `pattern`, or rejects at the deadline. */
function follow(proc: ChildProcess) {
  let out = "";
  const waiters = new Set<() => void>();
  const onData = (chunk: Buffer) => {
    out += chunk.toString();
    for (const w of waiters) w();
  };
  proc.stdout?.on("data", onData);
  proc.stderr?.on("data", onData);
  return {
    output: () => out,
    waitFor(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
      return new Promise((resolvePromise, reject) => {
        const check = () => {
          const m = out.match(pattern);
          if (!m) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolvePromise(m);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no ${pattern} within ${timeoutMs} ms:\n${out}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
  };
}

/** The environment of a small stack on free ports, as the tests run it. */
const stackEnv = (natsPort: number, apiPort: number) => ({
  ...process.env,
  NATS_URL: `nats://127.0.0.1:${natsPort}`,
  DOCKET_PORT: String(apiPort),
  DOCKET_WORKER_PORT: "0",
  DOCKET_GPU: "false",
  DOCKET_THREADS: "1",
  DOCKET_MAX_BATCH: "2",
  DOCKET_CONTEXT_SIZE: "1024",
  DOCKET_MAX_TOKENS: "16",
  DOCKET_LOG_FORMAT: "json",
  // As a new user runs it: no model named, so the launcher hands the worker the generated demo model.
  DOCKET_MODEL: "",
});

describe("npm start", () => {
  it("starts its own nats-server when none answers, serves a job end to end, and stops everything on SIGTERM", async () => {
    dir = await mkdtemp(join(tmpdir(), "docket-start-"));
    const natsPort = await freePort();
    const apiPort = await freePort();
    child = spawn(process.execPath, ["--import", import.meta.resolve("tsx"), join(root, "tools/start.ts")], {
      cwd: dir,
      env: stackEnv(natsPort, apiPort),
      stdio: ["ignore", "pipe", "pipe"],
    });
    const proc = child;
    const out = follow(proc);
    const [, url] = await out.waitFor(/docket is up: API at (\S+)/, 60_000);
    await out.waitFor(/GENERATED DEMO MODEL.*NOISE/, 1_000);
    expect(url).toBe(`http://127.0.0.1:${apiPort}`);
    // The banner says where to go; with auth off, no Authorization header in its commands.
    await out.waitFor(/one text {4}curl/, 1_000);
    expect(out.output()).toContain(`[docket]   dashboard   ${url}/dashboard\n`);
    expect(out.output()).toContain(`[docket]   API docs    ${url}/docs`);
    expect(out.output()).toMatch(/\[docket\] {3}a folder {4}id=\$\(npx docket submit \.\/contracts\//);
    expect(out.output()).not.toContain("Authorization");
    for (const page of ["/dashboard", "/docs"]) expect((await fetch(`${url}${page}`)).status, page).toBe(200);
    expect(await isListening("127.0.0.1", natsPort)).toBe(true);

    const created = await fetch(`${url}/v1/jobs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ task: "summarize", input: { text: "A short memo." } }),
    });
    expect(created.status).toBe(202);
    const { id } = (await created.json()) as { id: string };
    // Another process: its state is only visible over HTTP, so ask until it is final (with a deadline).
    let state = "queued";
    for (const deadline = Date.now() + 30_000; Date.now() < deadline && !["succeeded", "failed"].includes(state); ) {
      await new Promise((r) => setTimeout(r, 200));
      state = ((await (await fetch(`${url}/v1/jobs/${id}`)).json()) as { state: string }).state;
    }
    expect(state).toBe("succeeded");

    const exited = new Promise<number | null>((r) => proc.once("exit", (code) => r(code)));
    proc.kill("SIGTERM");
    expect(await exited).toBe(0);
    expect(await isListening("127.0.0.1", natsPort)).toBe(false);
    expect(await isListening("127.0.0.1", apiPort)).toBe(false);
  });

  it("Ctrl-C in a terminal (SIGINT to the whole process group of `npm start`) stops worker, producer and the nats-server it started, whose store is in DOCKET_DATA_DIR", async () => {
    dir ??= await mkdtemp(join(tmpdir(), "docket-start-"));
    const dataDir = join(dir, "ctrl-c");
    const natsPort = await freePort();
    const apiPort = await freePort();
    // A terminal runs `npm start` as its own foreground process group (npm, sh, tsx, tools/start.ts) and Ctrl-C
    // sends SIGINT to all of them at once. Producer, worker and nats-server run in process groups of their own.
    const npm = spawn("npm", ["--prefix", root, "start"], {
      cwd: root,
      // With a key set, the banner's commands carry the Authorization header (reading the key from the shell).
      env: { ...stackEnv(natsPort, apiPort), DOCKET_DATA_DIR: dataDir, DOCKET_API_KEY: "start-test-admin-key" },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    group = npm.pid;
    const out = follow(npm);
    const [, pid] = await out.waitFor(/started nats-server \(pid (\d+)\) on \S+, store (\S+)/, 60_000);
    natsPid = Number(pid);
    expect(out.output()).toContain(`store ${join(dataDir, "nats")}`);
    await out.waitFor(/docket is up: API at/, 60_000);
    await out.waitFor(/one text {4}curl/, 1_000);
    expect(out.output()).toContain(`/v1/jobs -H "Authorization: Bearer $DOCKET_API_KEY" -H 'content-type: application/json'`);
    expect(out.output()).toContain("auth is on: every call needs Authorization: Bearer <key>");
    expect(out.output()).not.toContain("start-test-admin-key");
    expect(existsSync(join(dataDir, "docket.db"))).toBe(true);
    expect(existsSync(join(dataDir, "nats", "jetstream"))).toBe(true);
    expect(readFileSync(join(dataDir, "nats", "nats-server.pid"), "utf8").trim()).toBe(pid);

    // npm ends at once on SIGINT, and npm and tsx relay it to their child again (a race with how soon the child
    // reports it); an impatient user presses Ctrl-C twice. The launcher must finish stopping whatever comes.
    const closed = new Promise((r) => npm.once("close", r));
    process.kill(-(npm.pid as number), "SIGINT");
    await out.waitFor(/\[docket\] stopping/, 10_000);
    process.kill(-(npm.pid as number), "SIGINT");
    // stdout closes once every process that holds it has ended: npm, sh, tsx, the launcher, producer and worker.
    await closed;
    expect(out.output()).toMatch(/\[docket\] stopped/);
    expect(alive(natsPid)).toBe(false);
    expect(await isListening("127.0.0.1", natsPort)).toBe(false);
    expect(await isListening("127.0.0.1", apiPort)).toBe(false);
  });
});
