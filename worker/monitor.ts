import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "../runtime/log.ts";
import type { WorkerMetrics } from "./metrics.ts";

export interface MonitorOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  metrics: WorkerMetrics;
  /** Why the worker is not ready, or undefined when it is. */
  notReady: () => string | undefined;
  log: Logger;
}

/**
 * The worker's own small HTTP server: /healthz (the process answers), /readyz (model loaded and NATS
 * connected) and /metrics (Prometheus). It starts before the model loads, so a long load is visible.
 */
export class WorkerMonitor {
  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(o: MonitorOptions): Promise<WorkerMonitor> {
    const server = createServer((req, res) => {
      const path = (req.url ?? "/").split("?")[0];
      const json = (status: number, body: unknown) => {
        res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
      };
      if (req.method !== "GET" && req.method !== "HEAD")
        return json(405, { error: { code: "method_not_allowed", message: "GET only" } });
      if (path === "/healthz") return json(200, { ok: true });
      if (path === "/readyz") {
        const reason = o.notReady();
        return reason ? json(503, { ready: false, reason }) : json(200, { ready: true });
      }
      if (path === "/metrics") {
        o.metrics.text().then(
          (text) => res.writeHead(200, { "content-type": o.metrics.contentType }).end(text),
          (err: Error) => {
            o.log.error({ err: err.message }, "metrics collection failed");
            json(500, { error: { code: "internal", message: "metrics collection failed" } });
          },
        );
        return;
      }
      json(404, { error: { code: "not_found", message: `no route ${req.method} ${path}` } });
    });
    server.requestTimeout = 10_000;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(o.port, o.host, () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    const url = `http://${o.host.includes(":") ? `[${o.host}]` : o.host}:${port}`;
    o.log.info({ url }, "worker monitor listening (/healthz, /readyz, /metrics)");
    return new WorkerMonitor(server, url);
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
