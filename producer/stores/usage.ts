import { and, asc, eq, gte, lte, sql } from "drizzle-orm";
import { type JobRow, type UsageDailyRow, usageDaily } from "../../schema/tables.ts";
import type { Db } from "../db.ts";

/** The usage_daily key of a job's owner: "" for the admin key and for jobs submitted with auth off. */
export const usageKey = (owner: string | null): string => owner ?? "";

/** YYYY-MM-DD of an ISO time, in UTC. */
export const utcDay = (iso: string): string => new Date(iso).toISOString().slice(0, 10);

/** Totals over any set of days. */
export type UsageTotals = Omit<UsageDailyRow, "key" | "day">;

const SUMS = {
  succeeded: sql<number>`coalesce(sum(${usageDaily.succeeded}), 0)`,
  failed: sql<number>`coalesce(sum(${usageDaily.failed}), 0)`,
  documents: sql<number>`coalesce(sum(${usageDaily.documents}), 0)`,
  promptTokens: sql<number>`coalesce(sum(${usageDaily.promptTokens}), 0)`,
  completionTokens: sql<number>`coalesce(sum(${usageDaily.completionTokens}), 0)`,
  cachedTokens: sql<number>`coalesce(sum(${usageDaily.cachedTokens}), 0)`,
};

/**
 * The usage_daily table: jobs, documents and tokens per API key and UTC day. The recorder adds each job's end
 * in the transaction that records it (add), so usage is the recorded results, counted once.
 */
export class UsageStore {
  constructor(private readonly db: Db) {}

  /** Adds a job that just ended (succeeded or failed) to its key's day: the day of `at`, its finish time. */
  add(job: Pick<JobRow, "owner" | "state" | "task" | "result">, at: string): void {
    const u = job.result?.usage;
    const row = {
      succeeded: job.state === "succeeded" ? 1 : 0,
      failed: job.state === "failed" ? 1 : 0,
      documents: job.task === "chat" ? 0 : 1,
      promptTokens: u?.promptTokens ?? 0,
      completionTokens: u?.completionTokens ?? 0,
      cachedTokens: u?.cachedTokens ?? 0,
    };
    const plus = (c: keyof typeof row) => sql`${usageDaily[c]} + ${row[c]}`;
    this.db
      .insert(usageDaily)
      .values({ key: usageKey(job.owner), day: utcDay(at), ...row })
      .onConflictDoUpdate({
        target: [usageDaily.key, usageDaily.day],
        set: {
          succeeded: plus("succeeded"),
          failed: plus("failed"),
          documents: plus("documents"),
          promptTokens: plus("promptTokens"),
          completionTokens: plus("completionTokens"),
          cachedTokens: plus("cachedTokens"),
        },
      })
      .run();
  }

  /** Rows by day then key; `key` unset: every key's. Days are YYYY-MM-DD, both ends included. */
  list(q: { key?: string; from?: string; to?: string }): UsageDailyRow[] {
    return this.db
      .select()
      .from(usageDaily)
      .where(
        and(
          q.key !== undefined ? eq(usageDaily.key, q.key) : undefined,
          q.from ? gte(usageDaily.day, q.from) : undefined,
          q.to ? lte(usageDaily.day, q.to) : undefined,
        ),
      )
      .orderBy(asc(usageDaily.day), asc(usageDaily.key))
      .all();
  }

  /** Prompt + completion tokens a key's jobs used on `day`. */
  tokensOn(key: string, day: string): number {
    const r = this.db
      .select({ tokens: sql<number>`coalesce(sum(${usageDaily.promptTokens} + ${usageDaily.completionTokens}), 0)` })
      .from(usageDaily)
      .where(and(eq(usageDaily.key, key), eq(usageDaily.day, day)))
      .get();
    return r?.tokens ?? 0;
  }

  /** All-time totals per key (the /metrics counters). */
  totalsByKey(): (UsageTotals & { key: string })[] {
    return this.db
      .select({ key: usageDaily.key, ...SUMS })
      .from(usageDaily)
      .groupBy(usageDaily.key)
      .all();
  }
}
