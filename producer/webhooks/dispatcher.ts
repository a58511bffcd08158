import { lookup as dnsLookup, type LookupAddress, type LookupAllOptions, type LookupOneOptions } from "node:dns";
import { EventEmitter } from "node:events";
import http from "node:http";
import https from "node:https";
import { isIP } from "node:net";
import type { Logger } from "../../runtime/log.ts";
import type { WebhookDeliveryRow } from "../../schema/tables.ts";
import { WebhookUrl } from "../../schema/webhook.ts";
import type { AttemptOutcome, Outbox } from "../stores/outbox.ts";
import { type AddressPolicy, ForbiddenAddressError } from "./address.ts";
import { signatureHeaders } from "./signature.ts";

export interface DispatcherOptions {
  /** Deliveries in flight at once. */
  concurrency: number;
  timeoutMs: number;
  /** Longest sleep between two looks at the outbox, for rows queued by code that does not call wake(). */
  idleMs?: number;
}

/** Seconds or an HTTP date, as Retry-After carries them. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * POSTs one signed body. DNS is resolved at connection time through the policy, so a name that
 * resolves to a private address (or is rebound to one after submit) is refused before connecting.
 * Redirects are not followed: only 2xx counts as delivered. A URL that is not http(s) (a row written
 * before submit checked it) and a forbidden address are permanent: no later attempt could succeed.
 */
export function postWebhook(
  url: string,
  body: string,
  headers: Record<string, string>,
  policy: AddressPolicy,
  timeoutMs: number,
): Promise<AttemptOutcome> {
  if (!WebhookUrl.safeParse(url).success) {
    return Promise.resolve({ ok: false, permanent: true, error: "the callback URL is not an http or https URL" });
  }
  const target = new URL(url);
  const host = target.hostname.replace(/^\[|\]$/g, "");
  if (isIP(host) && !policy.permits(host)) {
    return Promise.resolve({ ok: false, permanent: true, error: `${host} is a forbidden address (DOCKET_WEBHOOK_ALLOW)` });
  }
  let refused: string | undefined;
  const lookup = (hostname: string, options: LookupOneOptions | LookupAllOptions, callback: LookupCallback) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, "");
      const bad = addresses.find((a) => !policy.permits(a.address));
      if (bad) {
        refused = bad.address;
        return callback(new ForbiddenAddressError(`${hostname} resolves to forbidden address ${bad.address}`), "");
      }
      if ((options as LookupAllOptions).all) return callback(null, addresses);
      callback(null, addresses[0]!.address, addresses[0]!.family);
    });
  };
  const client = target.protocol === "https:" ? https : http;
  return new Promise((resolve) => {
    const req = client.request(
      target,
      {
        method: "POST",
        headers: {
          ...headers,
          "content-type": "application/json",
          "content-length": Buffer.byteLength(body),
          "user-agent": "docket-webhooks/1",
        },
        lookup: lookup as never,
        timeout: timeoutMs,
      },
      (res) => {
        clearTimeout(deadline);
        // Only the status matters; the body is not read, so a receiver cannot hold the connection.
        res.destroy();
        const statusCode = res.statusCode ?? 0;
        if (statusCode >= 200 && statusCode < 300) return resolve({ ok: true, statusCode });
        const retryAfter = res.headers["retry-after"];
        const retryAfterMs = statusCode === 429 || statusCode === 503 ? parseRetryAfter(retryAfter) : undefined;
        resolve({
          ok: false,
          statusCode,
          error: `HTTP ${statusCode}`,
          // 410 Gone: the receiver asks us to stop.
          ...(statusCode === 410 ? { permanent: true } : {}),
          ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
        });
      },
    );
    // `timeout` bounds idle time; the deadline bounds the whole exchange (a slow-drip receiver).
    const deadline = setTimeout(() => req.destroy(new Error(`no response within ${timeoutMs} ms`)), timeoutMs);
    req.on("timeout", () => req.destroy(new Error(`no response within ${timeoutMs} ms`)));
    req.on("error", (err) => {
      clearTimeout(deadline);
      if (refused !== undefined || err instanceof ForbiddenAddressError) {
        return resolve({ ok: false, permanent: true, error: `${err.message} (DOCKET_WEBHOOK_ALLOW)` });
      }
      resolve({ ok: false, error: (err as NodeJS.ErrnoException).code ?? err.message });
    });
    req.end(body);
  });
}

/**
 * Delivers the webhook outbox: due rows, at most `concurrency` at once, each attempt recorded with its
 * outcome and next time. Sleeps until the earliest pending attempt, or until wake().
 * Emits "attempt" (the delivery row after the attempt was recorded).
 */
export class Dispatcher extends EventEmitter {
  private readonly inFlight = new Map<string, Promise<void>>();
  private timer?: NodeJS.Timeout;
  private stopped = true;

  constructor(
    private readonly outbox: Outbox,
    private readonly policy: AddressPolicy,
    private readonly secret: string,
    private readonly log: Logger,
    private readonly options: DispatcherOptions,
  ) {
    super();
    this.setMaxListeners(0);
  }

  start(): void {
    this.stopped = false;
    this.wake();
  }

  /** Looks at the outbox now (call after queueing a delivery). */
  wake(): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.pass();
  }

  private pass(): void {
    if (this.stopped) return;
    try {
      this.fill();
    } catch (err) {
      // SQLite busy or closing: look again after the idle interval rather than crash the producer.
      this.log.error({ err: (err as Error).message }, "webhook dispatcher could not read the outbox");
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.pass(), this.options.idleMs ?? 30_000);
      this.timer.unref();
    }
  }

  private fill(): void {
    const free = this.options.concurrency - this.inFlight.size;
    if (free > 0) {
      const rows = this.outbox.due(Date.now(), free + this.inFlight.size).filter((r) => !this.inFlight.has(r.id));
      for (const row of rows.slice(0, free)) {
        // Leased past the request timeout, so nextDue() does not see it while it is in flight.
        this.outbox.lease(row.id, Date.now() + this.options.timeoutMs + 1_000);
        const p = this.attempt(row).finally(() => {
          this.inFlight.delete(row.id);
          this.pass();
        });
        this.inFlight.set(row.id, p);
      }
    }
    this.schedule();
  }

  private schedule(): void {
    clearTimeout(this.timer);
    const idle = this.options.idleMs ?? 30_000;
    const next = this.outbox.nextDue();
    const delay = next === undefined ? idle : Math.min(idle, Math.max(0, next - Date.now()));
    this.timer = setTimeout(() => this.pass(), delay);
    this.timer.unref();
  }

  private async attempt(row: WebhookDeliveryRow): Promise<void> {
    const headers = signatureHeaders(this.secret, row.id, row.payload);
    let outcome: AttemptOutcome;
    try {
      outcome = await postWebhook(row.url, row.payload, headers, this.policy, this.options.timeoutMs);
    } catch (err) {
      outcome = { ok: false, error: (err as Error).message };
    }
    let after: WebhookDeliveryRow;
    try {
      after = this.outbox.record(row, outcome);
    } catch (err) {
      // Unrecorded: the lease expires and the attempt is made again (receivers deduplicate on webhook-id).
      this.log.error({ deliveryId: row.id, err: (err as Error).message }, "could not record a webhook attempt");
      return;
    }
    this.emit("attempt", after);
    const ids = { deliveryId: row.id, type: row.type, jobId: row.jobId, batchId: row.batchId, attempts: after.attempts };
    if (after.status === "delivered") this.log.info({ ...ids, statusCode: outcome.statusCode }, "webhook delivered");
    else if (after.status === "dead") this.log.warn({ ...ids, error: after.lastError }, "webhook dead; no more attempts");
    else this.log.debug({ ...ids, error: after.lastError, nextAttemptAt: after.nextAttemptAt }, "webhook attempt failed");
  }

  /** Stops scheduling and waits for the attempts in flight (each bounded by the request timeout). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await Promise.allSettled([...this.inFlight.values()]);
  }
}
