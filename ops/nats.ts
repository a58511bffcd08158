import { connect, type NatsConnection } from "@nats-io/transport-node";

/** Connects to NATS_URL (comma-separated servers), reconnecting forever: a restart of nats-server is not fatal. */
export function connectNats(url: string, name: string): Promise<NatsConnection> {
  return connect({
    servers: url
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean),
    name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
  });
}
