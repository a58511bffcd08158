import { EventEmitter } from "node:events";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "../runtime/log.ts";
import { isPermissionError } from "../runtime/nats.ts";
import { inspectLayout, type Layout, type ProvisionOptions, provision } from "../runtime/provision.ts";
import type { Db } from "./db.ts";
import type { Publisher } from "./publisher.ts";
import type { JobStore, LostJobs } from "./stores/jobs.ts";
import { SettingsStore } from "./stores/settings.ts";

/** settings key: DOCKET_JOBS's creation time as last seen. Another value means the stream was made anew. */
const JOBS_STREAM_CREATED = "jetstream.jobs_stream_created";

export interface JetStreamWatchOptions {
  /** How often the layout is checked besides every reconnect. */
  intervalMs: number;
  /** Re-create what is missing (DOCKET_PROVISION=auto); otherwise only report it. */
  provision: boolean;
  provisionOptions: ProvisionOptions;
}

/** What one check found and did. */
export interface CheckResult {
  /** What was missing when the check began. */
  missing: string[];
  /** Re-created by this check. */
  provisioned: boolean;
  /** Jobs found lost with DOCKET_JOBS (counted once, when the new stream is first seen). */
  lost?: LostJobs;
  /** Jobs published again by this check. */
  republished: number;
}

/**
 * Keeps JetStream holding what SQLite says it holds. A store wiped under a running stack (a nats-server restarted
 * on an empty store, a stream deleted by hand) leaves the producer connected to a JetStream without docket's
 * streams, consumers and buckets, and queued jobs that no worker will ever see. On every reconnect and every
 * `intervalMs`, check(): re-provisions what is missing; when DOCKET_JOBS is not the stream seen before (its
 * creation time, kept in SQLite, changed), marks every unfinished job unpublished so the publisher republishes it
 * (Nats-Msg-Id = job id: a duplicate inside the window is dropped). /readyz asks notReady().
 * Emits "repaired" (CheckResult) after a check that re-provisioned or republished.
 */
export class JetStreamWatch extends EventEmitter {
  private readonly settings: SettingsStore;
  private timer?: NodeJS.Timeout;
  private checking?: Promise<CheckResult | undefined>;
  private connected = true;
  /** Lost jobs not yet republished: the producer is not ready until they are. */
  private lost = 0;
  private layout?: Promise<Layout>;

  constructor(
    private readonly nc: NatsConnection,
    private readonly db: Db,
    private readonly store: JobStore,
    private readonly publisher: Publisher,
    private readonly log: Logger,
    private readonly options: JetStreamWatchOptions,
  ) {
    super();
    this.settings = new SettingsStore(db);
  }

  /** Checks now, then on every reconnect and every intervalMs until stop(). */
  async start(): Promise<void> {
    await this.check();
    this.timer = setInterval(() => void this.check(), this.options.intervalMs);
    this.timer.unref();
    void (async () => {
      for await (const s of this.nc.status()) {
        if (s.type === "disconnect") this.connected = false;
        else if (s.type === "reconnect") {
          this.connected = true;
          void this.check();
        }
      }
    })();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.checking;
  }

  /** Why the producer is not ready, or undefined when it is: NATS, then docket's layout, then lost jobs. */
  async notReady(): Promise<string | undefined> {
    if (this.nc.isClosed() || !this.connected) return "NATS disconnected";
    let layout: Layout;
    try {
      layout = await this.readLayout();
    } catch (err) {
      return `JetStream does not answer: ${(err as Error).message}`;
    }
    if (layout.missing.length) return `JetStream lacks ${layout.missing.join(", ")}`;
    if (this.lost) return `republishing ${this.lost} jobs lost with DOCKET_JOBS`;
    return undefined;
  }

  /** The layout as JetStream answers now; probes that come while a read is under way share it. */
  private readLayout(): Promise<Layout> {
    this.layout ??= inspectLayout(this.nc).finally(() => {
      this.layout = undefined;
    });
    return this.layout;
  }

  /** One check and repair; one at a time (a check asked for meanwhile joins the running one). */
  check(): Promise<CheckResult | undefined> {
    this.checking ??= this.repair()
      .catch((err) => {
        this.log.warn({ err: (err as Error).message }, "JetStream check failed; will retry");
        return undefined;
      })
      .finally(() => {
        this.checking = undefined;
      });
    return this.checking;
  }

  private async repair(): Promise<CheckResult | undefined> {
    if (this.nc.isClosed()) return undefined;
    let layout = await inspectLayout(this.nc);
    const result: CheckResult = { missing: layout.missing, provisioned: false, republished: 0 };
    if (layout.missing.length) {
      if (!this.options.provision) {
        this.log.error(
          { missing: layout.missing },
          "JetStream lacks docket's streams, consumers or buckets and DOCKET_PROVISION=skip: run `npm run provision` as the admin user",
        );
        return result;
      }
      this.log.error(
        { missing: layout.missing, count: layout.missing.length },
        "JetStream lost docket's streams, consumers or buckets (store wiped or deleted): provisioning them again",
      );
      try {
        await provision(this.nc, this.options.provisionOptions);
      } catch (err) {
        if (!isPermissionError(err)) throw err;
        this.log.error(
          { missing: layout.missing },
          "this NATS user may not provision JetStream: run `npm run provision` as the admin user",
        );
        return result;
      }
      result.provisioned = true;
      layout = await inspectLayout(this.nc);
    }
    if (layout.jobsCreated) {
      const created = layout.jobsCreated;
      // One transaction: the new stream is recorded exactly when its lost jobs are marked for republishing.
      const lost = this.db.transaction(() => {
        const seen = this.settings.get(JOBS_STREAM_CREATED);
        if (seen === created) return undefined;
        this.settings.put(JOBS_STREAM_CREATED, created);
        // First check of this database: the stream is the one its jobs were published to.
        return seen === undefined ? undefined : this.store.markLost();
      });
      if (lost) {
        this.publisher.streamMadeAnew();
        result.lost = lost;
        this.lost = lost.queued + lost.running;
        this.log.error(
          { ...lost, streamCreated: created },
          "DOCKET_JOBS is not the stream the queued jobs were published to: its messages are lost; republishing every unfinished job from SQLite",
        );
        if (lost.unknown)
          this.log.error(
            { jobs: lost.unknown },
            "jobs known only from their events (published by another NATS client) cannot be republished: SQLite lacks their input",
          );
      }
    }
    if (this.lost) {
      const before = this.lost;
      const swept = await this.publisher.sweepNow();
      result.republished = swept.published;
      if (swept.complete) this.lost = 0;
      this.log.warn(
        { republished: swept.published, lost: before, complete: swept.complete },
        swept.complete ? "republished the jobs lost with DOCKET_JOBS" : "republishing lost jobs stopped short; will retry",
      );
    }
    if (result.provisioned || result.republished) this.emit("repaired", result);
    return result;
  }
}
