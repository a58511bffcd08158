import { type Config, ConfigError, readConfig } from "../schema/config.ts";
import { createLogger, type Logger } from "./log.ts";

export interface Service {
  /** What `npm start` (tools/start.ts) is told once the process is ready: the URL, or the worker id. */
  ready: string;
  close(): Promise<void>;
}

/**
 * The life of a docket process (producer/main.ts, worker/main.ts): read the config, start, say ready,
 * and on SIGINT or SIGTERM close once and exit 0. Under `npm start` a lost parent (killed -9) means
 * stop too, rather than run on unseen.
 */
export async function runService(name: string, start: (config: Config, log: Logger) => Promise<Service>): Promise<void> {
  let read: ReturnType<typeof readConfig>;
  try {
    read = readConfig();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${name}: ${err.message}\n`);
    process.exit(2);
  }
  const { config, warnings } = read;
  const log = createLogger(name, config.DOCKET_LOG_LEVEL).child({ service: config.DOCKET_SERVICE_NAME });
  for (const warning of warnings) log.warn(warning);
  if (read.file) log.info({ file: read.file }, "config file read (variables in the environment win over it)");
  let service: Service;
  try {
    service = await start(config, log);
  } catch (err) {
    // An error with a machine code (insufficient_memory, model_not_found, ...) says what to change: no stack.
    const code = (err as { code?: unknown }).code;
    if (typeof code !== "string") throw err;
    log.fatal({ code }, (err as Error).message);
    process.exit(1);
  }
  process.send?.({ ready: service.ready });

  let stopping = false;
  process.once("disconnect", () => process.emit("SIGTERM"));
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, async () => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, "shutting down");
      await service.close();
      process.exit(0);
    });
  }
}
