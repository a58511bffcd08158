import type { Context } from "hono";
import type { BatchRow, DocumentRow, JobRow } from "../../schema/tables.ts";
import { ApiError } from "../errors.ts";
import type { BatchStore } from "../stores/batches.ts";
import type { DocumentRecords } from "../stores/documents.ts";
import type { JobStore } from "../stores/jobs.ts";

/**
 * Who is calling. `keyId` is the created key's id, written as `owner` on the jobs and batches it submits;
 * null for the admin (DOCKET_API_KEY) and when auth is off. The admin sees every row; a key sees its own.
 */
export interface Principal {
  keyId: string | null;
  admin: boolean;
}

declare module "hono" {
  interface ContextVariableMap {
    principal: Principal;
  }
}

/** Auth off, or a route mounted outside the auth middleware (tests of one router): full access. */
const OPEN: Principal = { keyId: null, admin: true };

export const principalOf = (c: Context): Principal => c.get("principal") ?? OPEN;

/** The owner filter for lists: undefined (everything) for the admin. */
export const ownerFilter = (p: Principal): string | undefined => (p.admin ? undefined : (p.keyId ?? undefined));

/** Idempotency keys are per API key: another key's same Idempotency-Key must not return its job. */
export const scopedIdempotencyKey = (p: Principal, key: string | undefined): string | undefined =>
  key && p.keyId ? `${p.keyId}:${key}` : key;

/** The one ownership rule: the admin sees every row, a key the rows it created. */
export const canSee = (p: Principal, row: { owner: string | null }): boolean => p.admin || row.owner === p.keyId;

/** 403 forbidden unless the caller may see `row` (`what` names it in the message, `field` in the error). */
export function checkOwner(p: Principal, row: { owner: string | null }, what: string, field?: string): void {
  if (!canSee(p, row)) throw new ApiError("forbidden", `${what} belongs to another API key`, field);
}

/** The job, if it exists (404) and the caller may see it (403). */
export function ownJob(store: JobStore, p: Principal, id: string): JobRow {
  const row = store.get(id);
  if (!row) throw new ApiError("not_found", `no job with id ${id}`);
  checkOwner(p, row, `job ${id}`);
  return row;
}

export function ownBatch(batches: BatchStore, p: Principal, id: string): BatchRow {
  const row = batches.get(id);
  if (!row) throw new ApiError("not_found", `no batch with id ${id}`);
  checkOwner(p, row, `batch ${id}`);
  return row;
}

/**
 * The document, if it exists and the caller may see it; otherwise 404 document_not_found, for another key's
 * document too: a job or batch naming an id it cannot use gets one answer, whoever uploaded it.
 */
export function ownDocument(records: DocumentRecords, p: Principal, id: string, field?: string): DocumentRow {
  const row = records.get(id);
  if (!row || !canSee(p, row))
    throw new ApiError("document_not_found", `no document with id ${id}; upload it with POST /v1/documents`, field);
  return row;
}
