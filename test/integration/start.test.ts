import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freePort, isListening } from "../../tools/nats-server.ts";

const root = resolve(import.meta.dirname, "../..");
let child: ChildProcess | undefined;
let dir: string | undefined;

afterAll(async () => {
  if (child && child.exitCode === null) child.kill("SIGKILL");
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Resolves with the first match of `pattern` in the child's output, or rejects at the deadline. */
function waitForOutput(proc: ChildProcess, pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
  return new Promise((resolvePromise, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`no ${pattern} within ${timeoutMs} ms:\n${out}`)), timeoutMs);
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const m = out.match(pattern);
      if (m) {
        clearTimeout(timer);
        resolvePromise(m);
      }
    };
    proc.stdout?.on("data", onData);
    proc.stderr?.on("data", onData);
  });
}

describe("npm start", () => {
  it("starts its own nats-server when none answers, serves a job end to end, and stops everything on SIGTERM", async () => {
    dir = await mkdtemp(join(tmpdir(), "docket-start-"));
    const natsPort = await freePort();
    const apiPort = await freePort();
    child = spawn(process.execPath, ["--import", import.meta.resolve("tsx"), join(root, "tools/start.ts")], {
      cwd: dir,
      env: {
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
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const proc = child;
    const noise = waitForOutput(proc, /GENERATED DEMO MODEL.*NOISE/, 60_000);
    const [, url] = await waitForOutput(proc, /docket is up: API at (\S+)/, 60_000);
    await noise;
    expect(url).toBe(`http://127.0.0.1:${apiPort}`);
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
});
