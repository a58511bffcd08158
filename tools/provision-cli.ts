/**
 * `npm run provision [-- --model M[,N]]`: creates or updates docket's streams, consumers and buckets, then exits.
 * Run it as a NATS user allowed to manage JetStream (deploy/nats/secure.conf: admin) when the producer runs as the
 * restricted producer user with DOCKET_PROVISION=skip. Same config keys as the producer. `--model` also creates the
 * consumers of the jobs naming those models, which a restricted worker user may not create itself.
 */

import { parseArgs } from "node:util";
import { connectNats, natsSecurity } from "../runtime/nats.ts";
import { provision, provisionOptions } from "../runtime/provision.ts";
import { loadConfig } from "../schema/config.ts";
import { isModelName } from "../schema/model.ts";

const { values } = parseArgs({ options: { model: { type: "string", multiple: true } } });
const models = (values.model ?? [])
  .flatMap((m) => m.split(","))
  .map((m) => m.trim())
  .filter(Boolean);
const bad = models.filter((m) => !isModelName(m));
if (bad.length) {
  process.stderr.write(`[docket] not a model name: ${bad.join(", ")} (lowercase letters, digits, '-' and '_')\n`);
  process.exit(2);
}
const config = loadConfig();
const options = { ...provisionOptions(config), models };
const nc = await connectNats(config.NATS_URL, "docket-provision", natsSecurity(config));
try {
  await provision(nc, options);
  const also = models.length ? `, consumers of models ${models.join(", ")}` : "";
  process.stdout.write(`[docket] provisioned JetStream at ${config.NATS_URL} (replicas ${options.replicas}${also})\n`);
} catch (err) {
  process.stderr.write(`[docket] provisioning failed: ${(err as Error).message}\n`);
  process.exitCode = 1;
} finally {
  await nc.close();
}
