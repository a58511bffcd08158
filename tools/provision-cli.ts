/**
 * `npm run provision`: creates or updates docket's streams, consumers and buckets, then exits. Run it as a
 * NATS user allowed to manage JetStream (deploy/nats/secure.conf: admin) when the producer runs as the
 * restricted producer user with DOCKET_PROVISION=skip. Same config keys as the producer.
 */

import { connectNats, natsSecurity } from "../runtime/nats.ts";
import { provision, provisionOptions } from "../runtime/provision.ts";
import { loadConfig } from "../schema/config.ts";

const config = loadConfig();
const options = provisionOptions(config);
const nc = await connectNats(config.NATS_URL, "docket-provision", natsSecurity(config));
try {
  await provision(nc, options);
  process.stdout.write(`[docket] provisioned JetStream at ${config.NATS_URL} (replicas ${options.replicas})\n`);
} catch (err) {
  process.stderr.write(`[docket] provisioning failed: ${(err as Error).message}\n`);
  process.exitCode = 1;
} finally {
  await nc.close();
}
