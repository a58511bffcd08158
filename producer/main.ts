import { createLogger } from "../ops/log.ts";
import { loadConfig } from "../schema/config.ts";
import { startProducer } from "./producer.ts";

const config = loadConfig();
const log = createLogger("producer", config.DOCKET_LOG_LEVEL);
const producer = await startProducer(config, log);

// Tells `npm start` (ops/start.ts) this process is ready.
process.send?.({ ready: producer.url });

let stopping = false;
// Under `npm start` a lost parent (killed -9) means stop too, rather than run on unseen.
process.once("disconnect", () => process.emit("SIGTERM"));
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, async () => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "shutting down");
    await producer.close();
    process.exit(0);
  });
}
