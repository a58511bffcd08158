import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { createServer, Socket } from "node:net";

export const NATS_INSTALL_HINT =
  "nats-server is not installed: install the Debian package with `sudo apt-get install -y nats-server` " +
  "(or download it from https://github.com/nats-io/nats-server/releases), or set NATS_URL to a running JetStream server";

/** Path of the nats-server binary, or undefined when it is not installed. */
export function findNatsServer(): string | undefined {
  for (const candidate of ["nats-server", "/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"]) {
    const r = spawnSync(candidate, ["--version"], { encoding: "utf8" });
    if (r.status === 0) return candidate;
  }
  return undefined;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === "object" && addr ? resolve(addr.port) : reject(new Error("no port"))));
    });
  });
}

/** True when something accepts TCP connections at host:port within timeoutMs. */
export function isListening(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once("error", () => done(false));
    socket.connect(port, host, () => done(true));
  });
}

export interface NatsServerOptions {
  /** Arguments for nats-server, e.g. ["-c", "nats.conf"] or ["-p", "4333", "-js", "-sd", dir]. */
  args: string[];
  cwd?: string;
  /** Environment of the server (nats.conf reads $VARIABLES from it); default: this process's. */
  env?: NodeJS.ProcessEnv;
  /** How long to wait for "Server is ready". */
  readyTimeoutMs?: number;
  /** Own process group: a terminal's Ctrl-C reaches only the parent, which then stops the server last. */
  detached?: boolean;
  /** Receives each line the server logs. */
  onLog?: (line: string) => void;
}

export interface RunningNatsServer {
  process: ChildProcess;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * A JetStream server of one's own on a free local port, its store in `storeDir` (benchmarks, the soak test): what
 * startNatsServer returns, and the URL to reach it.
 */
export async function startLocalJetStream(storeDir: string): Promise<RunningNatsServer & { url: string }> {
  const port = await freePort();
  const server = await startNatsServer({ args: ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", storeDir] });
  return { ...server, url: `nats://127.0.0.1:${port}` };
}

/** Starts nats-server and resolves once it logs that it is ready (JetStream recovered and listening). */
export async function startNatsServer(options: NatsServerOptions): Promise<RunningNatsServer> {
  const bin = findNatsServer();
  if (!bin) throw new Error(NATS_INSTALL_HINT);
  const child = spawn(bin, options.args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ["ignore", "pipe", "pipe"],
    detached: options.detached ?? false,
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  let log = "";
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`nats-server did not become ready in ${options.readyTimeoutMs ?? 15000} ms:\n${log}`)),
      options.readyTimeoutMs ?? 15000,
    );
    const onData = (chunk: Buffer) => {
      const text = chunk.toString();
      log += text;
      for (const line of text.split("\n")) if (line) options.onLog?.(line);
      if (log.includes("Server is ready")) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`nats-server exited with code ${code}:\n${log}`));
    });
  });
  return {
    process: child,
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}
