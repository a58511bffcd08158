import type { Lane } from "../schema/subjects.ts";

/**
 * The worker's free sequences, handed to lanes. `reserve` slots are kept for the interactive lane,
 * so a 10,000-document batch never makes a waiting person wait behind it.
 */
export class SlotPool {
  private free: number;
  private waiters: (() => void)[] = [];

  constructor(
    readonly size: number,
    readonly reserve = size >= 2 ? 1 : 0,
  ) {
    this.free = size;
  }

  get available(): number {
    return this.free;
  }

  get busy(): number {
    return this.size - this.free;
  }

  /** Takes up to `max` slots for `lane` now; 0 when the lane may take none. */
  take(lane: Lane, max: number): number {
    const allowed = lane === "interactive" ? this.free : Math.max(0, this.free - this.reserve);
    const n = Math.min(max, allowed);
    this.free -= n;
    return n;
  }

  release(n = 1): void {
    if (n <= 0) return;
    this.free = Math.min(this.size, this.free + n);
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
    while (this.free < this.size) await this.changed();
  }
}
