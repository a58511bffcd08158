import type { Lane } from "../schema/subjects.ts";

/**
 * The worker's free sequences, handed to lanes. `reserve` slots are kept for the interactive lane,
 * so a 10,000-document batch never makes a waiting person wait behind it.
 */
export class SlotPool {
  private free: number;
  private waiters: (() => void)[] = [];
  private _size: number;

  constructor(
    size: number,
    private readonly reserveWanted = 1,
  ) {
    this._size = size;
    this.free = size;
  }

  get size(): number {
    return this._size;
  }

  /** Slots kept for the interactive lane: none when the pool has a single slot. */
  get reserve(): number {
    return this._size >= 2 ? this.reserveWanted : 0;
  }

  /** Changes how many slots exist (the batcher's decision); running work keeps its slots. */
  resize(size: number): void {
    const delta = size - this._size;
    this._size = size;
    this.free += delta;
    if (delta > 0) this.release(0);
  }

  get available(): number {
    return Math.max(0, this.free);
  }

  get busy(): number {
    return this._size - this.free;
  }

  /** Takes up to `max` slots for `lane` now; 0 when the lane may take none. */
  take(lane: Lane, max: number): number {
    const allowed = lane === "interactive" ? this.free : this.free - this.reserve;
    const n = Math.max(0, Math.min(max, allowed));
    this.free -= n;
    return n;
  }

  release(n = 1): void {
    if (n < 0) return;
    this.free = Math.min(this._size, this.free + n);
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** Resolves at the next release. */
  changed(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Resolves once every slot is free (in-flight work finished). */
  async idle(): Promise<void> {
    while (this.free < this._size) await this.changed();
  }
}
