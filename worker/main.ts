import { createLogger } from "../ops/log.ts";
import { loadConfig } from "../schema/config.ts";
import { startWorker } from "./worker.ts";

const config = loadConfig();
const log = createLogger("worker", config.DOCKET_LOG_LEVEL);
const worker = await startWorker(config, log);

// Tells `npm start` (ops/start.ts) this process is ready.
process.send?.({ ready: worker.id });

let stopping = false;
// Under `npm start` a lost parent (killed -9) means stop too, rather than run on unseen.
process.once("disconnect", () => process.emit("SIGTERM"));
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, async () => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "draining");
    await worker.close();
    process.exit(0);
  });
}
