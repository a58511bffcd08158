import { createHmac, randomBytes } from "node:crypto";
import type { Logger } from "../../runtime/log.ts";
import type { Db } from "../db.ts";
import { SettingsStore } from "../stores/settings.ts";

const SECRET_KEY = "webhook_secret";
const PREFIX = "whsec_";

/** A Standard Webhooks secret: `whsec_` + base64 of 24 to 64 random bytes. */
export function parseSecret(secret: string): Buffer {
  const key = Buffer.from(secret.startsWith(PREFIX) ? secret.slice(PREFIX.length) : secret, "base64");
  if (key.length < 24 || key.length > 64) {
    throw new Error("DOCKET_WEBHOOK_SECRET: expected whsec_ followed by base64 of 24 to 64 bytes");
  }
  return key;
}

export function generateSecret(): string {
  return `${PREFIX}${randomBytes(32).toString("base64")}`;
}

/**
 * The signing secret: DOCKET_WEBHOOK_SECRET when set, otherwise the one stored in the `settings` table,
 * generated on first use. Its value is never logged; `npm run webhook:secret` prints it for receivers.
 */
export function webhookSecret(db: Db, configured: string | undefined, log?: Logger): string {
  if (configured) {
    parseSecret(configured);
    return configured;
  }
  const store = new SettingsStore(db);
  const stored = store.get(SECRET_KEY);
  if (stored) return stored;
  const value = store.putIfAbsent(SECRET_KEY, generateSecret());
  log?.info({ setting: SECRET_KEY }, "webhook secret generated and stored in the settings table");
  return value;
}

/** Standard Webhooks headers for one attempt: `v1,` + base64 HMAC-SHA256 of `id.timestamp.body`. */
export function signatureHeaders(secret: string, id: string, body: string, now = Date.now()): Record<string, string> {
  const timestamp = String(Math.floor(now / 1000));
  const signature = createHmac("sha256", parseSecret(secret)).update(`${id}.${timestamp}.${body}`).digest("base64");
  return { "webhook-id": id, "webhook-timestamp": timestamp, "webhook-signature": `v1,${signature}` };
}
