import { runService } from "../runtime/service.ts";
import { startWorker } from "./worker.ts";

// close() drains: stop pulling, finish in-flight jobs within DOCKET_GRACE_SECONDS, return the rest.
await runService("worker", async (config, log) => {
  const worker = await startWorker(config, log);
  return { ready: worker.id, close: () => worker.close() };
});
