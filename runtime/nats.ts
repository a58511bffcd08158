import { readFileSync } from "node:fs";
import { type ConnectionOptions, connect, credsAuthenticator, type NatsConnection } from "@nats-io/transport-node";
import type { Config } from "../schema/config.ts";

/** Who a client is and how it reaches the server: user/password or a creds file, and TLS. */
export interface NatsSecurity {
  user?: string;
  password?: string;
  /** Path of a NATS credentials file (JWT + nkey seed). */
  creds?: string;
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
}

/** The client side of NATS security from config (NATS_USER, NATS_PASSWORD, NATS_CREDS, NATS_TLS_*). */
export function natsSecurity(
  config: Pick<Config, "NATS_USER" | "NATS_PASSWORD" | "NATS_CREDS" | "NATS_TLS_CA" | "NATS_TLS_CERT" | "NATS_TLS_KEY">,
): NatsSecurity {
  const tls = {
    ...(config.NATS_TLS_CA ? { caFile: config.NATS_TLS_CA } : {}),
    ...(config.NATS_TLS_CERT ? { certFile: config.NATS_TLS_CERT } : {}),
    ...(config.NATS_TLS_KEY ? { keyFile: config.NATS_TLS_KEY } : {}),
  };
  return {
    ...(config.NATS_USER ? { user: config.NATS_USER } : {}),
    ...(config.NATS_PASSWORD ? { password: config.NATS_PASSWORD } : {}),
    ...(config.NATS_CREDS ? { creds: config.NATS_CREDS } : {}),
    ...(Object.keys(tls).length ? { tls } : {}),
  };
}

/**
 * Connects to NATS_URL (comma-separated servers), reconnecting forever: a restart of nats-server is not fatal.
 * `security` adds credentials and TLS; without it the connection is anonymous and plain, as `npm start` runs it.
 */
export function connectNats(url: string, name: string, security: NatsSecurity = {}): Promise<NatsConnection> {
  const options: ConnectionOptions = {
    servers: url
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean),
    name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
  };
  if (security.user) options.user = security.user;
  if (security.password) options.pass = security.password;
  if (security.creds) options.authenticator = credsAuthenticator(readFileSync(security.creds));
  if (security.tls) options.tls = security.tls;
  return connect(options);
}

/** True for the server's refusal of a publish or JetStream API call the user has no permission for. */
export function isPermissionError(err: unknown): boolean {
  for (let e = err; e instanceof Error; e = e.cause) if (/permissions violation/i.test(e.message)) return true;
  return false;
}
