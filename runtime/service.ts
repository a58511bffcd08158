import { type Config, readConfig } from "../schema/config.ts";
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
  const { config, warnings } = readConfig();
  const log = createLogger(name, config.DOCKET_LOG_LEVEL);
  for (const warning of warnings) log.warn(warning);
  const service = await start(config, log);
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
