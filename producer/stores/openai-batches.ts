import { and, desc, eq, lt } from "drizzle-orm";
import { type OpenAIBatchRow, openaiBatches } from "../../schema/tables.ts";
import type { Db } from "../db.ts";
import { page } from "./page.ts";

/** The openai_batches table: what an OpenAI batch adds to its docket batch (same id; see BatchStore). */
export class OpenAIBatchStore {
  constructor(private readonly db: Db) {}

  insert(row: typeof openaiBatches.$inferInsert): void {
    this.db.insert(openaiBatches).values(row).run();
  }

  get(id: string): OpenAIBatchRow | undefined {
    return this.db.select().from(openaiBatches).where(eq(openaiBatches.id, id)).get();
  }

  /** Newest first; `after` is the last id of the previous page; `owner` undefined lists every batch (the admin). */
  list(q: { limit: number; after?: string }, owner: string | undefined): { rows: OpenAIBatchRow[]; hasMore: boolean } {
    const rows = this.db
      .select()
      .from(openaiBatches)
      .where(
        and(
          q.after ? lt(openaiBatches.id, q.after) : undefined,
          owner !== undefined ? eq(openaiBatches.owner, owner) : undefined,
        ),
      )
      .orderBy(desc(openaiBatches.id))
      .limit(q.limit + 1)
      .all();
    return page(rows, q.limit);
  }

  /** Records the batch's output and error files (null: that part has no lines), once it has ended. */
  setFiles(id: string, files: Pick<OpenAIBatchRow, "outputFileId" | "errorFileId" | "filesAt">): void {
    this.db.update(openaiBatches).set(files).where(eq(openaiBatches.id, id)).run();
  }
}
