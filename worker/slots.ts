import type { Lane } from "../schema/subjects.ts";

/**
 * The worker's sequences, handed to lanes. `size` is the batch size (the batcher's decision) that the
 * default and batch lanes share; `reserve` more are kept for the interactive lane on top of it, so a
 * 10,000-document batch never makes a waiting person wait behind it. Interactive jobs may also use
 * free batch slots.
 */
export class SlotPool {
  private batchBusy = 0;
  private interactiveBusy = 0;
  /** Slots running a job; `batchBusy` and `interactiveBusy` also count slots held by pulls still waiting for one. */
  private batchRunning = 0;
  private interactiveRunning = 0;
  private waiters: (() => void)[] = [];

  constructor(
    private _size: number,
    readonly reserve = 1,
  ) {}

  /** The batch size: sequences the default and batch lanes may use. */
  get size(): number {
    return this._size;
  }

  get busy(): number {
    return this.batchBusy + this.interactiveBusy;
  }

  /**
   * Every slot the default and batch lanes may use is running a job: the batch size is being measured.
   * A slot held by an idle pull (waiting for a job that may never come) does not count.
   */
  get saturated(): boolean {
    return this.batchRunning >= this._size;
  }

  /** A job started on a slot taken for `lane`. */
  begin(lane: Lane): void {
    if (lane === "interactive") this.interactiveRunning++;
    else this.batchRunning++;
  }

  /** The job begun on a slot of `lane` ended: the slot is free again. */
  finish(lane: Lane): void {
    if (lane === "interactive") this.interactiveRunning = Math.max(0, this.interactiveRunning - 1);
    else this.batchRunning = Math.max(0, this.batchRunning - 1);
    this.release(lane, 1);
  }

  /**
   * Free slots for `lane`. While an interactive job runs, the batch lanes start nothing new: the person's
   * job then shares decode steps with the jobs already running, not with new documents' prompts, which
   * would make each of its steps wait for hundreds of prompt tokens (measured by `npm run bench:worker`).
   */
  available(lane: Lane = "batch"): number {
    const total = this._size + this.reserve - this.busy;
    if (lane === "interactive") return Math.max(0, total);
    if (this.interactiveRunning > 0) return 0;
    return Math.max(0, Math.min(this._size - this.batchBusy, total));
  }

  /** Changes the batch size (the batcher's decision); running work keeps its slots. */
  resize(size: number): void {
    const grew = size > this._size;
    this._size = size;
    if (grew) this.wake();
  }

  /** Takes up to `max` slots for `lane` now; 0 when the lane may take none. */
  take(lane: Lane, max: number): number {
    const n = Math.max(0, Math.min(max, this.available(lane)));
    if (lane === "interactive") this.interactiveBusy += n;
    else this.batchBusy += n;
    return n;
  }

  release(lane: Lane, n = 1): void {
    if (n <= 0) return;
    if (lane === "interactive") this.interactiveBusy = Math.max(0, this.interactiveBusy - n);
    else this.batchBusy = Math.max(0, this.batchBusy - n);
    this.wake();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** Resolves at the next release or growth. */
  changed(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Resolves once `lane` could take a slot it cannot take now (at once when it already can). */
  async freed(lane: Lane): Promise<void> {
    while (this.available(lane) === 0) await this.changed();
  }

  /** Resolves once no slot is busy (in-flight work finished). */
  async idle(): Promise<void> {
    while (this.busy > 0) await this.changed();
  }
}
