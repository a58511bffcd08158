/**
 * `npm start [-- --config docket.yaml]`: the whole stack on one machine. Reads the config file (--config, else
 * DOCKET_CONFIG, else ./docket.yaml when it exists) under the environment, checks before starting anything that
 * each of DOCKET_WORKERS workers can hold the model in its share of DOCKET_GPU_MEMORY_BYTES (tools/preflight.ts),
 * then uses NATS at NATS_URL when one answers or starts `nats-server -c deploy/nats/nats.conf` itself (its store
 * in DOCKET_DATA_DIR/nats), one
 * producer (which migrates SQLite and provisions JetStream) and DOCKET_WORKERS workers, as child processes.
 * Ctrl-C stops them in order: workers (drain), producer, nats-server.
 */
import { type ChildProcess, fork } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { ConfigError, readConfig } from "../schema/config.ts";
import { describePlan } from "../worker/planner.ts";
import { startBanner } from "./banner.ts";
import { findNatsServer, isListening, NATS_INSTALL_HINT, type RunningNatsServer, startNatsServer } from "./nats-server.ts";
import { PreflightError, preflight } from "./preflight.ts";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
// A closed terminal must not turn a line of output into an uncaught EPIPE in the middle of shutting down.
process.stdout.on("error", () => undefined);
const say = (line: string) => process.stdout.write(`[docket] ${line}\n`);

let options: { config?: string; help?: boolean } = {};
try {
  options = parseArgs({ options: { config: { type: "string" }, help: { type: "boolean" } } }).values;
} catch (err) {
  say((err as Error).message);
  process.exit(2);
}
if (options.help) {
  say("usage: npm start [-- --config docket.yaml]   (docs/configuration.md: the config file and every variable)");
  process.exit(0);
}
if (options.config) {
  if (!existsSync(options.config)) {
    say(`--config: no such file: ${options.config}`);
    process.exit(2);
  }
  process.env.DOCKET_CONFIG = resolve(options.config);
}
let read: ReturnType<typeof readConfig>;
try {
  read = readConfig();
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  say(err.message);
  process.exit(2);
}
const { config, warnings, file } = read;
for (const warning of warnings) say(`warning: ${warning}`);
// The producer and the workers read the same file.
if (file) {
  process.env.DOCKET_CONFIG = resolve(file);
  say(`config file ${file} (variables set in the environment win over it)`);
}

let checked: Awaited<ReturnType<typeof preflight>>;
if (/^(hf:|huggingface:|https?:\/\/)/.test(config.DOCKET_MODEL ?? "")) {
  say(`resolving ${config.DOCKET_MODEL} into ${config.DOCKET_MODELS_DIR} (downloaded once, here, when missing)`);
}
try {
  checked = await preflight(config, file);
} catch (err) {
  if (!(err instanceof PreflightError)) throw err;
  say(`not starting (${err.code}): ${err.message}`);
  process.exit(1);
}
// Every worker runs the file checked here (a folder's pick, a download done once).
process.env.DOCKET_MODEL = checked.modelPath;
if (checked.demo) {
  say("DOCKET_MODEL is not set: the worker runs the GENERATED DEMO MODEL. Its weights are random: its output is NOISE.");
  say("  For real analysis point DOCKET_MODEL at a GGUF file or an hf: URI, for example:");
  say("  DOCKET_MODEL=hf:unsloth/Qwen3-Next-80B-A3B-Instruct-GGUF:Q4_K_M npm start");
}
say(`each worker: ${describePlan(checked.plan)}`);

const first = new URL(
  config.NATS_URL.split(",")[0]
    ?.trim()
    .replace(/^nats:/, "http:") ?? "http://127.0.0.1:4222",
);
const natsHost = first.hostname;
const natsPort = Number(first.port || 4222);
// One store per data folder: two stacks started from one checkout with different folders never share one.
const storeDir = resolve(config.DOCKET_DATA_DIR, "nats");
const pidFile = join(storeDir, "nats-server.pid");

/** The pid in the store's pid file while it still runs nats-server: an earlier launcher left it running. */
function leftoverNatsServer(): number | undefined {
  let pid: number;
  try {
    pid = Number(readFileSync(pidFile, "utf8").trim());
    process.kill(pid, 0);
  } catch {
    return undefined;
  }
  // nats-server leaves its pid file behind: a reused pid is not taken for it (checked on Linux, trusted elsewhere).
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("nats-server") ? pid : undefined;
  } catch {
    return pid;
  }
}

let nats: RunningNatsServer | undefined;
if (await isListening(natsHost, natsPort)) {
  say(`using NATS at ${config.NATS_URL}`);
  const leftover = leftoverNatsServer();
  if (leftover)
    say(
      `warning: that is nats-server pid ${leftover}, started for ${config.DOCKET_DATA_DIR} by an earlier \`npm start\` that did not stop it; it keeps running after this one stops (kill ${leftover} to stop it)`,
    );
} else {
  if (!["127.0.0.1", "localhost", "::1", "[::1]"].includes(natsHost)) {
    say(`nothing answers at NATS_URL=${config.NATS_URL}; start that server or unset NATS_URL to run one locally`);
    process.exit(1);
  }
  if (!findNatsServer()) {
    say(NATS_INSTALL_HINT);
    process.exit(1);
  }
  mkdirSync(storeDir, { recursive: true });
  nats = await startNatsServer({
    // nats.conf reads its store_dir from DOCKET_NATS_STORE_DIR (nats-server refuses -sd next to a store_dir).
    // A non-default port means a second local stack (tests, a demo beside a real one): no monitoring port then.
    args: [
      "-c",
      join(root, "deploy/nats/nats.conf"),
      "-a",
      natsHost,
      "-p",
      String(natsPort),
      "-P",
      pidFile,
      ...(natsPort === 4222 ? [] : ["-m", "0"]),
    ],
    env: { ...process.env, DOCKET_NATS_STORE_DIR: storeDir },
    cwd: process.cwd(),
    detached: true,
  });
  say(`started nats-server (pid ${nats.process.pid}) on ${natsHost}:${natsPort}, store ${storeDir}`);
}

const children: { name: string; child: ChildProcess }[] = [];
function launch(name: string, entry: string, env: Record<string, string> = {}): Promise<string> {
  const child = fork(join(root, entry), [], {
    cwd: process.cwd(),
    execArgv: ["--import", import.meta.resolve("tsx")],
    env: { ...process.env, ...env },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
    // Ctrl-C reaches only this process, which then stops the children in order.
    detached: true,
  });
  children.push({ name, child });
  return new Promise((resolveReady, reject) => {
    child.on("message", (m: { ready?: string }) => m.ready && resolveReady(m.ready));
    child.once("exit", (code) => {
      reject(new Error(`${name} exited with code ${code}`));
      if (!stopping) void shutdown(1);
    });
  });
}

let stopping = false;
async function shutdown(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  say(`stopping: ${config.DOCKET_WORKERS > 1 ? "workers" : "worker"}, producer, nats-server`);
  for (const { child } of [...children].reverse()) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    await exited;
  }
  await nats?.stop();
  say("stopped");
  process.exit(code);
}
// Ctrl-C signals the terminal's whole foreground process group: npm, its shell, tsx and this process each get
// SIGINT, and npm and tsx relay it to their child again. Every signal after the first is ignored: with one-shot
// handlers the relayed second SIGINT killed this process mid-shutdown and left the detached nats-server running.
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(signal, () => void shutdown(0));
// However else this process ends, the nats-server it started (in its own process group) does not outlive it.
process.on("exit", () => nats?.process.kill("SIGTERM"));

try {
  const url = await launch("producer", "producer/main.ts");
  // Workers on one host need their own monitor port: DOCKET_WORKER_PORT, the next ones, or 0 (any free one) for all.
  const port = config.DOCKET_WORKER_PORT;
  await Promise.all(
    Array.from({ length: config.DOCKET_WORKERS }, (_, i) =>
      launch(config.DOCKET_WORKERS > 1 ? `worker ${i + 1}` : "worker", "worker/main.ts", {
        DOCKET_WORKER_PORT: String(port === 0 ? 0 : port + i),
      }),
    ),
  );
  if (config.DOCKET_WORKERS > 1) say(`${config.DOCKET_WORKERS} workers are up`);
  for (const line of startBanner(url, { auth: config.DOCKET_API_KEY !== undefined })) say(line);
} catch (err) {
  say((err as Error).message);
  await shutdown(1);
}
