import { and, desc, eq, lt } from "drizzle-orm";
import type { FileObject } from "../../schema/openai-batch.ts";
import { type FileRow, files } from "../../schema/tables.ts";
import type { Db } from "../db.ts";
import { newId } from "../ids.ts";
import { page } from "./page.ts";

export type FileMeta = Omit<FileRow, "content">;

const META = {
  id: files.id,
  filename: files.filename,
  purpose: files.purpose,
  bytes: files.bytes,
  batchId: files.batchId,
  batchPart: files.batchPart,
  owner: files.owner,
  createdAt: files.createdAt,
};

/** OpenAI-style file id: `file-` + a time-ordered docket id (sortable, so lists page by id). */
export const newFileId = () => `file-${newId("f").slice(2)}`;

/** The files table: uploads with their bytes, and batch output/error files whose lines come from jobs. */
export class FileStore {
  constructor(private readonly db: Db) {}

  insert(row: Omit<FileRow, "owner"> & { owner?: string | null }): FileMeta {
    this.db
      .insert(files)
      .values({ ...row, owner: row.owner ?? null })
      .run();
    const { content: _, ...meta } = { ...row, owner: row.owner ?? null };
    return meta;
  }

  get(id: string): FileMeta | undefined {
    return this.db.select(META).from(files).where(eq(files.id, id)).get();
  }

  /** The stored bytes of an uploaded file (undefined for a batch's rendered files). */
  content(id: string): Buffer | undefined {
    return this.db.select({ content: files.content }).from(files).where(eq(files.id, id)).get()?.content ?? undefined;
  }

  /** Newest first; `after` is the last id of the previous page; `owner` undefined lists every file (the admin). */
  list(q: { limit: number; after?: string; purpose?: string }, owner?: string): { rows: FileMeta[]; hasMore: boolean } {
    const rows = this.db
      .select(META)
      .from(files)
      .where(
        and(
          q.after ? lt(files.id, q.after) : undefined,
          q.purpose ? eq(files.purpose, q.purpose) : undefined,
          owner !== undefined ? eq(files.owner, owner) : undefined,
        ),
      )
      .orderBy(desc(files.id))
      .limit(q.limit + 1)
      .all();
    return page(rows, q.limit);
  }

  delete(id: string): boolean {
    return this.db.delete(files).where(eq(files.id, id)).run().changes === 1;
  }
}

export function toFileObject(row: FileMeta): FileObject {
  return {
    id: row.id,
    object: "file",
    bytes: row.bytes,
    created_at: Math.floor(Date.parse(row.createdAt) / 1000),
    filename: row.filename,
    purpose: row.purpose,
    status: "processed",
    expires_at: null,
    status_details: null,
  };
}
