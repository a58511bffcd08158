import { isFresh, type WorkerHeartbeat } from "../schema/heartbeat.ts";
import type { WorkerRegistry } from "./worker-registry.ts";

/** What the live workers do together. */
export interface FleetRate {
  /** Generated tokens per second, all workers together, as they last measured it with work to do. */
  tokensPerSecond: number;
  /** Sequences they decode together (the sum of their batch sizes): jobs that run at once. */
  sequences: number;
}

/**
 * The workers' throughput from their heartbeats (workers.<id> in docket-control), heard through the WorkerRegistry's
 * watch: nothing is polled. A heartbeat's tokens/s is a moving average that falls to 0 while the worker idles, so
 * each worker's rate is the average of the heartbeats it sent while it had jobs running: an idle fleet still
 * tells how fast it works.
 */
export class Throughput {
  private readonly beats = new Map<string, WorkerHeartbeat>();
  private readonly busyRate = new Map<string, number>();
  private readonly onHeartbeat = (key: string, hb: WorkerHeartbeat) => this.heard(key, hb);
  private readonly onGone = (key: string) => this.forget(key);

  constructor(private readonly workers: WorkerRegistry) {}

  start(): void {
    this.workers.on("heartbeat", this.onHeartbeat);
    this.workers.on("gone", this.onGone);
  }

  stop(): void {
    this.workers.off("heartbeat", this.onHeartbeat);
    this.workers.off("gone", this.onGone);
  }

  /** The live workers' rate (0 tokens/s while none has measured one with work yet); undefined when none is alive. */
  current(now = Date.now()): FleetRate | undefined {
    let tokensPerSecond = 0;
    let sequences = 0;
    let alive = 0;
    for (const [key, hb] of this.beats) {
      if (!isFresh(hb, now)) continue;
      alive++;
      tokensPerSecond += this.busyRate.get(key) ?? 0;
      sequences += Math.max(1, hb.batchSize);
    }
    return alive > 0 ? { tokensPerSecond, sequences } : undefined;
  }

  private heard(key: string, hb: WorkerHeartbeat): void {
    this.beats.set(key, hb);
    if (hb.running === 0 || hb.tokensPerSecond <= 0) return;
    const before = this.busyRate.get(key);
    this.busyRate.set(key, before === undefined ? hb.tokensPerSecond : (before + hb.tokensPerSecond) / 2);
  }

  private forget(key: string): void {
    this.beats.delete(key);
    this.busyRate.delete(key);
  }
}
