import { createLogger } from "../ops/log.ts";
import { loadConfig } from "../schema/config.ts";
import { startProducer } from "./producer.ts";

const config = loadConfig();
const log = createLogger("producer", config.DOCKET_LOG_LEVEL);
const producer = await startProducer(config, log);

let stopping = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, async () => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "shutting down");
    await producer.close();
    process.exit(0);
  });
}
