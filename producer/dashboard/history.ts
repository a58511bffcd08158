/** One point of the dashboard's history: the system's figures at one time. */
export interface Sample {
  /** Epoch milliseconds. */
  at: number;
  /** Jobs that reached a final state per second since the previous sample (the recorder's changes). */
  jobsPerSecond: number;
  /** Generated tokens per second: the sum of the live workers' heartbeats, which sample their engines live. */
  tokensPerSecond: number;
  /** Jobs SQLite says are running. */
  running: number;
  /** Jobs the live workers say they are running (heartbeats). */
  inFlight: number;
  /** Sum of the live workers' batch sizes (the batchers' targets). */
  batchSize: number;
  /** Jobs SQLite says are queued. */
  queued: number;
  /** Job messages JetStream holds that no worker has pulled yet, all lanes; null when NATS could not be read. */
  waiting: number | null;
  /** Job messages delivered to workers and not yet acked, all lanes; null when NATS could not be read. */
  withWorkers: number | null;
  /** Live workers. */
  workers: number;
}

/**
 * The dashboard's history: samples taken every few seconds by the producer (whether or not a page is open), kept
 * for `spanMs` in memory, so a page loaded or reloaded draws the last hour at once. A producer restart starts it
 * again; long-term history is Prometheus's job (/metrics).
 */
export class History {
  private readonly points: Sample[] = [];

  constructor(readonly spanMs: number) {}

  add(sample: Sample): void {
    this.points.push(sample);
    const oldest = sample.at - this.spanMs;
    let drop = 0;
    while (drop < this.points.length && (this.points[drop]?.at ?? 0) < oldest) drop++;
    if (drop) this.points.splice(0, drop);
  }

  /** Oldest first. */
  all(): readonly Sample[] {
    return this.points;
  }

  latest(): Sample | undefined {
    return this.points.at(-1);
  }
}
