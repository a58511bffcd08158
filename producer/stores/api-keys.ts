import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { eq } from "drizzle-orm";
import type { CreatedKey, KeyQuotas, KeyView, UpdateKeyRequest } from "../../schema/api.ts";
import { type ApiKeyRow, apiKeys } from "../../schema/tables.ts";
import type { Principal } from "../auth/principal.ts";
import type { Db } from "../db.ts";
import { ApiError } from "../errors.ts";
import { newId } from "../ids.ts";

/**
 * SHA-256, not bcrypt/argon2: a key is 256 random bits, so there is no dictionary to slow down and
 * brute force is out of reach at any hash speed; a slow hash would only cost ~100 ms of CPU on every
 * request (a denial-of-service lever) for no gain. Slow hashes protect low-entropy human passwords.
 */
const sha256 = (secret: string): Buffer => createHash("sha256").update(secret, "utf8").digest();

const toKeyView = (row: ApiKeyRow): KeyView => ({
  id: row.id,
  name: row.name,
  createdAt: row.createdAt,
  revokedAt: row.revokedAt,
  quotas: { tokensPerDay: row.quotaTokensPerDay, queuedJobs: row.quotaQueuedJobs },
  weight: row.weight,
});

/** Quota columns from a request's quotas: a field left out is left as it is. */
const quotaColumns = (q: Partial<KeyQuotas> = {}) => ({
  ...(q.tokensPerDay !== undefined ? { quotaTokensPerDay: q.tokensPerDay } : {}),
  ...(q.queuedJobs !== undefined ? { quotaQueuedJobs: q.queuedJobs } : {}),
});

/**
 * API keys: DOCKET_API_KEY is the bootstrap admin key (never stored); keys created through /v1/keys are
 * `dk_` + 32 random bytes (base64url), stored as their SHA-256. Active keys' hashes are held in memory
 * (the producer is the only writer of the table) and compared with crypto.timingSafeEqual.
 */
export class KeyStore {
  private readonly adminHash?: Buffer;
  private active: { id: string; hash: Buffer }[] = [];
  /** Quotas of the keys that have one, by key id (read on every submission). */
  private quotas = new Map<string, KeyQuotas>();
  /** Weights of the keys whose weight is not 1, by key id (read when a key's share consumer is made). */
  private weights = new Map<string, number>();

  constructor(
    private readonly db: Db,
    adminKey: string | undefined,
  ) {
    if (adminKey) this.adminHash = sha256(adminKey);
    this.reload();
  }

  /** False when DOCKET_API_KEY is unset: auth is off and every caller is admin. */
  get enabled(): boolean {
    return this.adminHash !== undefined;
  }

  /** The principal a presented secret stands for, or undefined when it matches no active key. */
  verify(secret: string): Principal | undefined {
    const hash = sha256(secret);
    if (this.adminHash && timingSafeEqual(hash, this.adminHash)) return { keyId: null, admin: true };
    let found: string | undefined;
    // No early exit: the time taken does not depend on which key (if any) matched.
    for (const k of this.active) if (timingSafeEqual(hash, k.hash)) found = k.id;
    return found ? { keyId: found, admin: false } : undefined;
  }

  create(name: string, quotas?: Partial<KeyQuotas>, weight = 1, at = new Date().toISOString()): CreatedKey {
    const key = `dk_${randomBytes(32).toString("base64url")}`;
    const row = this.db
      .insert(apiKeys)
      .values({ id: newId("key"), name, hash: sha256(key).toString("hex"), createdAt: at, weight, ...quotaColumns(quotas) })
      .returning()
      .get();
    this.reload();
    return { ...toKeyView(row), key };
  }

  list(): KeyView[] {
    return this.db.select().from(apiKeys).orderBy(apiKeys.id).all().map(toKeyView);
  }

  /** Renames a key or changes its quotas or weight. */
  update(id: string, change: UpdateKeyRequest): KeyView {
    const set = {
      ...(change.name !== undefined ? { name: change.name } : {}),
      ...(change.weight !== undefined ? { weight: change.weight } : {}),
      ...quotaColumns(change.quotas),
    };
    const row =
      Object.keys(set).length > 0
        ? this.db.update(apiKeys).set(set).where(eq(apiKeys.id, id)).returning().get()
        : this.db.select().from(apiKeys).where(eq(apiKeys.id, id)).get();
    if (!row) throw new ApiError("not_found", `no key with id ${id}`);
    this.reload();
    return toKeyView(row);
  }

  /** The key's weight in the shared lanes (1 for an unknown key). */
  weight(id: string): number {
    return this.weights.get(id) ?? 1;
  }

  /** The key's quotas, when it has any. */
  quota(id: string): KeyQuotas | undefined {
    return this.quotas.get(id);
  }

  /** Key names by id, revoked keys included (usage and metrics name keys). */
  names(): Map<string, string> {
    return new Map(
      this.db
        .select({ id: apiKeys.id, name: apiKeys.name })
        .from(apiKeys)
        .all()
        .map((r) => [r.id, r.name]),
    );
  }

  /** Revokes a key (idempotent); its jobs and batches stay, visible to the admin. */
  revoke(id: string, at = new Date().toISOString()): KeyView {
    const row = this.db.select().from(apiKeys).where(eq(apiKeys.id, id)).get();
    if (!row) throw new ApiError("not_found", `no key with id ${id}`);
    if (row.revokedAt) return toKeyView(row);
    const revoked = this.db.update(apiKeys).set({ revokedAt: at }).where(eq(apiKeys.id, id)).returning().get();
    this.reload();
    return toKeyView(revoked ?? row);
  }

  private reload(): void {
    const rows = this.db
      .select()
      .from(apiKeys)
      .all()
      .filter((r) => !r.revokedAt);
    this.active = rows.map((r) => ({ id: r.id, hash: Buffer.from(r.hash, "hex") }));
    this.quotas = new Map(
      rows
        .filter((r) => r.quotaTokensPerDay !== null || r.quotaQueuedJobs !== null)
        .map((r) => [r.id, { tokensPerDay: r.quotaTokensPerDay, queuedJobs: r.quotaQueuedJobs }]),
    );
    this.weights = new Map(rows.filter((r) => r.weight !== 1).map((r) => [r.id, r.weight]));
  }
}
