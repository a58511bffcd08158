import { createHash, type Hash } from "node:crypto";
import type { BatchOptions, RejectedItem } from "../schema/batch.ts";
import type { JobMessage } from "../schema/job.ts";
import { ApiError } from "./errors.ts";
import { yieldToEventLoop } from "./pipeline.ts";

/** An Idempotency-Key (already scoped to the API key) and the fingerprint of the request that carries it. */
export interface Idempotency {
  key: string;
  fingerprint: string;
}

/** JSON with object keys sorted: one value, one text, whatever order its keys arrived in. */
function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

/**
 * The fingerprint the IETF Idempotency-Key draft asks to store with a key: SHA-256 over the request as
 * parsed and validated, not over its bytes, so a retry that re-serializes its JSON or sends its files with
 * a new multipart boundary is the same request, and any change of content is another one.
 */
export class RequestFingerprint {
  private readonly hash: Hash = createHash("sha256");

  add(part: unknown): this {
    this.hash.update(stableJson(part)).update("\n");
    return this;
  }

  digest(): string {
    return this.hash.digest("base64url");
  }
}

/** A batch's fingerprint: its options and every job its items became, whichever body (JSON, JSONL, files) carried them. */
export async function batchFingerprint(
  options: BatchOptions,
  jobs: readonly JobMessage[],
  rejected: readonly RejectedItem[],
): Promise<string> {
  const { task, lane, params, webhookUrl, deadline, completionWindow } = options;
  const fp = new RequestFingerprint()
    .add({ task, lane, params, webhookUrl, deadline, completionWindow })
    .add(rejected.map((r) => [r.line ?? r.file, r.code]));
  for (const [i, { task, input, params, customId }] of jobs.entries()) {
    if (i > 0 && i % 500 === 0) await yieldToEventLoop();
    fp.add({ task, input, params, customId });
  }
  return fp.digest();
}

/**
 * 422 idempotency_key_reused unless `fingerprint` is the one stored with the key's first request (a row
 * written before fingerprints were kept has none and matches any request).
 */
export function checkSameRequest(first: { idempotencyFingerprint: string | null }, fingerprint: string | undefined): void {
  if (first.idempotencyFingerprint && fingerprint && first.idempotencyFingerprint !== fingerprint)
    throw new ApiError(
      "idempotency_key_reused",
      "this Idempotency-Key was used for a request with another body; use a new key for a new request",
    );
}
