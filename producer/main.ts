import { runService } from "../runtime/service.ts";
import { startProducer } from "./producer.ts";

await runService("producer", async (config, log) => {
  const producer = await startProducer(config, log);
  return { ready: producer.url, close: () => producer.close() };
});
