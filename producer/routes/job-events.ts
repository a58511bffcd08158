import type { Context } from "hono";
import { streamSSE } from "hono/streaming";
import type { EventMessage } from "../../schema/event.ts";
import { TERMINAL_STATES } from "../../schema/job.ts";
import type { JobChange, Recorder } from "../recorder.ts";
import { type JobStore, toView } from "../stores/jobs.ts";
import type { WorkerRegistry } from "../worker-registry.ts";

/** Events a slow SSE client may fall behind by before it is disconnected. */
const MAX_PENDING = 1_000;

type Pending = { event: "state"; data: string; terminal: boolean } | { event: "progress"; data: string; terminal: false };

/**
 * GET /v1/jobs/:id/events: Server-Sent Events. `state` (the job view) first with the current state, then
 * on every change; `progress` ({tokens}) while the model generates; the stream ends after a terminal state.
 */
export function jobEventStream(c: Context, jobId: string, store: JobStore, recorder: Recorder, workers: WorkerRegistry) {
  return streamSSE(c, async (sse) => {
    const pending: Pending[] = [];
    let wake: (() => void) | undefined;
    const push = (p: Pending) => {
      pending.push(p);
      wake?.();
    };
    const stateOf = (terminal: boolean) => {
      const row = store.get(jobId);
      if (row) push({ event: "state", data: JSON.stringify(toView(row, workers.waiting(row))), terminal });
    };
    const onChange = (change: JobChange) => {
      if (change.jobId === jobId) stateOf(TERMINAL_STATES.includes(change.state));
    };
    const onProgress = (e: EventMessage) => {
      if (e.jobId === jobId)
        push({
          event: "progress",
          data: JSON.stringify({ jobId, tokens: e.tokens ?? 0, attempt: e.attempt, at: e.at }),
          terminal: false,
        });
    };
    recorder.on("change", onChange);
    recorder.on("progress", onProgress);
    sse.onAbort(() => wake?.());
    try {
      const now = store.get(jobId);
      if (!now) return;
      push({
        event: "state",
        data: JSON.stringify(toView(now, workers.waiting(now))),
        terminal: TERMINAL_STATES.includes(now.state),
      });
      while (!sse.aborted) {
        const next = pending.shift();
        if (!next) {
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
          wake = undefined;
          continue;
        }
        if (pending.length > MAX_PENDING) break;
        await sse.writeSSE({ event: next.event, data: next.data });
        if (next.terminal) break;
      }
    } finally {
      recorder.off("change", onChange);
      recorder.off("progress", onProgress);
    }
  });
}
