import { UsageQuery, type UsageReport } from "../../schema/api.ts";
import { principalOf } from "../auth/principal.ts";
import { ApiError } from "../errors.ts";
import type { Route } from "../route.ts";
import type { KeyStore } from "../stores/api-keys.ts";
import { type UsageStore, usageKey } from "../stores/usage.ts";
import { parseValue } from "../validate.ts";

export interface UsageRoutesDeps {
  usage: UsageStore;
  keys: KeyStore;
}

/** The name usage and /metrics give the admin key, and jobs submitted with auth off. */
export const ADMIN_KEY_NAME = "admin";

/** A usage_daily key's name: its API key's, or ADMIN_KEY_NAME. */
export const usageKeyName = (names: Map<string, string>, key: string): string =>
  key === "" ? ADMIN_KEY_NAME : (names.get(key) ?? key);

/** GET /v1/usage: jobs, documents and tokens per key and UTC day, from the recorded results. */
export const usageRoutes: Route<UsageRoutesDeps>[] = [
  {
    method: "get",
    path: "/v1/usage",
    access: "key",
    tag: "usage",
    summary: "Jobs, documents and tokens per API key and UTC day, from the recorded results",
    description:
      "A key sees its own usage; the admin key sees every key's (`keyId` picks one). `from` and `to` are UTC dates (YYYY-MM-DD), both included. Jobs count on the day they ended; tokens come from succeeded jobs' results.",
    query: [
      { name: "keyId", description: "one key's usage (admin key only, or the caller's own id)" },
      { name: "from", description: "first day, YYYY-MM-DD (UTC)" },
      { name: "to", description: "last day, YYYY-MM-DD (UTC)" },
    ],
    responses: { "200": "UsageReport", "400": "Error", "403": "Error" },
    handler: (c, { usage, keys }) => {
      const q = parseValue(UsageQuery, c.req.query());
      const principal = principalOf(c);
      if (!principal.admin && q.keyId !== undefined && q.keyId !== principal.keyId)
        throw new ApiError("forbidden", "a key sees its own usage only; the admin key sees every key's", "keyId");
      const key = principal.admin ? q.keyId : usageKey(principal.keyId);
      const names = keys.names();
      const rows = usage.list({ key, from: q.from, to: q.to });
      const totals = { succeeded: 0, failed: 0, documents: 0, promptTokens: 0, completionTokens: 0, cachedTokens: 0 };
      for (const r of rows) for (const k of Object.keys(totals) as (keyof typeof totals)[]) totals[k] += r[k];
      const data = rows.map(({ key: id, ...r }) => ({
        keyId: id === "" ? null : id,
        keyName: usageKeyName(names, id),
        ...r,
      }));
      return c.json({ data, totals } satisfies UsageReport);
    },
  },
];
