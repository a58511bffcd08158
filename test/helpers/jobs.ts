import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { OpenDatabase } from "../../producer/db.ts";
import type { EventMessage } from "../../schema/event.ts";
import { EVENTS_STREAM, subjects } from "../../schema/subjects.ts";

/** POSTs each body to /v1/jobs with at most `concurrency` requests in flight; returns the job ids in order. */
export async function submitJobs(
  baseUrl: () => string,
  bodies: unknown[],
  concurrency = 8,
  onSubmitted?: (count: number) => Promise<void> | void,
): Promise<string[]> {
  const ids: string[] = new Array(bodies.length);
  let next = 0;
  let done = 0;
  const lane = async () => {
    while (next < bodies.length) {
      const i = next++;
      for (let tries = 0; ; tries++) {
        try {
          const res = await fetch(`${baseUrl()}/v1/jobs`, {
            method: "POST",
            headers: { "content-type": "application/json", "idempotency-key": `submit-${i}` },
            body: JSON.stringify(bodies[i]),
          });
          if (res.status !== 202 && res.status !== 200) throw new Error(`POST /v1/jobs: ${res.status} ${await res.text()}`);
          ids[i] = ((await res.json()) as { id: string }).id;
          break;
        } catch (err) {
          // The producer may be down (a fault test kills it): the Idempotency-Key makes a retry safe.
          if (tries >= 50) throw err;
          await new Promise((r) => setTimeout(r, 200));
        }
      }
      await onSubmitted?.(++done);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  return ids;
}

/** A chat job of one token: the cheapest real generation. */
export const tinyJob = (i: number, extra: Record<string, unknown> = {}) => ({
  task: "chat",
  lane: "batch",
  input: {},
  params: { maxTokens: 1, messages: [{ role: "user", content: `note ${i}` }] },
  ...extra,
});

/** Rows per state, and jobs with other than exactly one final (completed or failed) event applied. */
export function ledger(database: OpenDatabase, ids: string[]) {
  const sqlite = database.sqlite;
  const states: Record<string, number> = {};
  for (const r of sqlite.prepare("select state, count(*) n from jobs group by state").all() as { state: string; n: number }[]) {
    states[r.state] = r.n;
  }
  const finals = new Map<string, number>();
  for (const r of sqlite
    .prepare("select job_id id, count(*) n from job_events where kind in ('completed','failed') group by job_id")
    .all() as { id: string; n: number }[]) {
    finals.set(r.id, r.n);
  }
  const missing = ids.filter((id) => !finals.has(id));
  const duplicated = ids.filter((id) => (finals.get(id) ?? 0) > 1);
  return { states, missing, duplicated };
}

/** Final events (completed + failed) DOCKET_EVENTS holds per job id. */
export async function storedFinalEvents(nc: NatsConnection): Promise<Map<string, number>> {
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info(EVENTS_STREAM, { subjects_filter: subjects.allEvents });
  const finals = new Map<string, number>();
  for (const [subject, n] of Object.entries(info.state.subjects ?? {})) {
    const [, , id, kind] = subject.split(".");
    if (id && (kind === "completed" || kind === "failed")) finals.set(id, (finals.get(id) ?? 0) + n);
  }
  return finals;
}

/**
 * A worker's event for the recorder in a unit test: a `completed` one carries a one-token result, a `failed` one the
 * error `code` (engine_error by default; retryable when it is timeout).
 */
export const workerEvent = (
  jobId: string,
  kind: EventMessage["kind"],
  o: { attempt?: number; at?: string; code?: string } = {},
): EventMessage => ({
  v: 1,
  jobId,
  kind,
  attempt: o.attempt ?? 1,
  workerId: "w",
  at: o.at ?? "2026-01-01T00:00:01.000Z",
  ...(kind === "completed"
    ? {
        result: {
          text: "ok",
          usage: { promptTokens: 1, completionTokens: 1 },
          timings: { queueMs: 0, runMs: 1, tokensPerSecond: 1 },
          model: "m",
        },
      }
    : {}),
  ...(kind === "failed" ? { error: { code: o.code ?? "engine_error", message: "x", retryable: o.code === "timeout" } } : {}),
});
