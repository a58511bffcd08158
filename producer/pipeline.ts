/**
 * Runs `fn` over `items` with at most `limit` calls in flight: many NATS publishes pipelined on one
 * connection without an unbounded Promise.all over user-sized input. Rejects with the first error,
 * after every started call has settled.
 */
export async function pipelined<T>(items: Iterable<T>, limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  const inFlight = new Set<Promise<void>>();
  let failure: { err: unknown } | undefined;
  for (const item of items) {
    if (failure) break;
    const p: Promise<void> = fn(item).then(
      () => {
        inFlight.delete(p);
      },
      (err) => {
        inFlight.delete(p);
        failure ??= { err };
      },
    );
    inFlight.add(p);
    if (inFlight.size >= limit) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  if (failure) throw failure.err;
}

/** Lets timers, I/O and other requests run between chunks of synchronous work. */
export const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));
