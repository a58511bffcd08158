import { LANES } from "../../schema/subjects.ts";

/** Queue wait and run time percentiles of one lane's recent succeeded jobs (or of all lanes: `lane` "all"). */
export interface LatencyFigures {
  lane: string;
  jobs: number;
  queueP50Ms: number;
  queueP95Ms: number;
  runP50Ms: number;
  runP95Ms: number;
}

/** The value below which `p` (0-1) of the sorted values lie: nearest rank, so it is always a measured value. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(p * sorted.length)));
  return sorted[rank - 1] ?? 0;
}

/** p50 and p95 of queue wait and run time: for all the jobs given first, then for each lane that has any. */
export function latencyByLane(rows: readonly { lane: string; queueMs: number; runMs: number }[]): LatencyFigures[] {
  const groups = new Map<string, { queue: number[]; run: number[] }>([["all", { queue: [], run: [] }]]);
  for (const r of rows) {
    for (const key of ["all", r.lane]) {
      const g = groups.get(key) ?? { queue: [], run: [] };
      groups.set(key, g);
      g.queue.push(Math.max(0, r.queueMs));
      g.run.push(Math.max(0, r.runMs));
    }
  }
  const out: LatencyFigures[] = [];
  for (const [lane, { queue, run }] of groups) {
    if (queue.length === 0) continue;
    queue.sort((a, b) => a - b);
    run.sort((a, b) => a - b);
    const ms = (n: number) => Math.round(n);
    out.push({
      lane,
      jobs: queue.length,
      queueP50Ms: ms(percentile(queue, 0.5)),
      queueP95Ms: ms(percentile(queue, 0.95)),
      runP50Ms: ms(percentile(run, 0.5)),
      runP95Ms: ms(percentile(run, 0.95)),
    });
  }
  const order = (lane: string) => (lane === "all" ? -1 : LANES.indexOf(lane as (typeof LANES)[number]));
  return out.sort((a, b) => order(a.lane) - order(b.lane));
}
