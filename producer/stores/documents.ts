import { and, desc, eq, lt } from "drizzle-orm";
import type { DocumentView } from "../../schema/document.ts";
import { type DocumentRow, documents } from "../../schema/tables.ts";
import type { Db } from "../db.ts";
import { page } from "./page.ts";

/**
 * The documents table: what was uploaded, by whom, and which docket-docs object holds its text (the object
 * itself is DocumentStore's, producer/documents.ts).
 */
export class DocumentRecords {
  constructor(private readonly db: Db) {}

  /** Inserts the row; returns false when its idempotency key is taken (another request created it). */
  insert(row: DocumentRow): boolean {
    return this.db.insert(documents).values(row).onConflictDoNothing({ target: documents.idempotencyKey }).run().changes === 1;
  }

  get(id: string): DocumentRow | undefined {
    return this.db.select().from(documents).where(eq(documents.id, id)).get();
  }

  byIdempotencyKey(key: string): DocumentRow | undefined {
    return this.db.select().from(documents).where(eq(documents.idempotencyKey, key)).get();
  }

  /** Newest first; `cursor` is the last id of the previous page (ids are time-ordered). `owner` unset: every document. */
  list(q: { limit: number; cursor?: string }, owner?: string): { rows: DocumentRow[]; nextCursor: string | null } {
    const rows = this.db
      .select()
      .from(documents)
      .where(and(owner !== undefined ? eq(documents.owner, owner) : undefined, q.cursor ? lt(documents.id, q.cursor) : undefined))
      .orderBy(desc(documents.id))
      .limit(q.limit + 1)
      .all();
    const { rows: pageRows, hasMore } = page(rows, q.limit);
    return { rows: pageRows, nextCursor: hasMore ? (pageRows.at(-1)?.id ?? null) : null };
  }

  delete(id: string): boolean {
    return this.db.delete(documents).where(eq(documents.id, id)).run().changes === 1;
  }
}

export function toDocumentView(row: DocumentRow, text?: string): DocumentView {
  return {
    id: row.id,
    object: "document",
    title: row.title,
    filename: row.filename,
    mime: row.mime,
    bytes: row.bytes,
    sha256: row.sha256,
    createdAt: row.createdAt,
    ...(text !== undefined ? { text } : {}),
  };
}
