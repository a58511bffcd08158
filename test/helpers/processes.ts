import { type ChildProcess, fork } from "node:child_process";
import { resolve } from "node:path";

const root = resolve(import.meta.dirname, "../..");

export interface DocketProcess {
  child: ChildProcess;
  /** What the process reported when ready: the producer's URL or the worker's id. */
  ready: Promise<string>;
  /** Resolves with the exit code or signal. */
  exited: Promise<number | NodeJS.Signals | null>;
  /** Everything the process logged (JSON lines), for a failing test's message. */
  output(): string;
  /** Sends the signal (SIGKILL: a real kill -9) and waits for the exit. */
  kill(signal?: NodeJS.Signals): Promise<number | NodeJS.Signals | null>;
}

/** Runs producer/main.ts or worker/main.ts as its own process, as `npm start` does, with `env` on top of ours. */
export function spawnDocket(entry: "producer/main.ts" | "worker/main.ts", env: Record<string, string>): DocketProcess {
  const child = fork(resolve(root, entry), [], {
    cwd: root,
    execArgv: ["--import", import.meta.resolve("tsx")],
    // Test files run in parallel: every worker takes a free monitor port unless the test names one.
    env: { ...process.env, DOCKET_LOG_FORMAT: "json", DOCKET_WORKER_PORT: "0", ...env },
    stdio: ["ignore", "pipe", "pipe", "ipc"],
  });
  let out = "";
  const keep = (chunk: Buffer) => {
    out = (out + chunk.toString()).slice(-20_000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const exited = new Promise<number | NodeJS.Signals | null>((r) => child.once("exit", (code, signal) => r(code ?? signal)));
  const ready = new Promise<string>((resolveReady, reject) => {
    child.on("message", (m: { ready?: string }) => m.ready && resolveReady(m.ready));
    void exited.then((code) => reject(new Error(`${entry} exited (${code}) before it was ready:\n${out}`)));
  });
  ready.catch(() => undefined);
  return {
    child,
    ready,
    exited,
    output: () => out,
    async kill(signal: NodeJS.Signals = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}
