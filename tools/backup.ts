import { copyFile, rename, rm } from "node:fs/promises";
import Database from "better-sqlite3";

export interface BackupResult {
  dest: string;
  pages: number;
  jobs: number;
  ms: number;
}

/**
 * Copies a live SQLite database with SQLite's online backup API (better-sqlite3 db.backup): consistent while
 * the producer keeps writing, whose writes are not blocked. The copy is checked before it is reported.
 */
export async function backupDatabase(source: string, dest: string): Promise<BackupResult> {
  const started = Date.now();
  const db = new Database(source, { fileMustExist: true });
  db.pragma("busy_timeout = 5000");
  let pages = 0;
  try {
    const tmp = `${dest}.partial`;
    await rm(tmp, { force: true });
    await db.backup(tmp, {
      progress: ({ totalPages }) => {
        pages = totalPages;
        return 256;
      },
    });
    const jobs = verifyDatabase(tmp);
    await rename(tmp, dest);
    return { dest, pages, jobs, ms: Date.now() - started };
  } finally {
    db.close();
  }
}

/** Opens a database file read-only, runs integrity_check and returns its job count; throws when it is damaged. */
export function verifyDatabase(file: string): number {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const check = db.pragma("integrity_check", { simple: true });
    if (check !== "ok") throw new Error(`${file}: integrity_check says ${String(check)}`);
    return (db.prepare("SELECT count(*) AS n FROM jobs").get() as { n: number }).n;
  } finally {
    db.close();
  }
}

/**
 * Puts a backup in place of the database: verified first, then copied beside it and renamed over it, and the
 * old WAL and shared-memory files removed (they belong to the replaced database). Run with the producer stopped.
 */
export async function restoreDatabase(backup: string, dbFile: string): Promise<{ jobs: number }> {
  const jobs = verifyDatabase(backup);
  const tmp = `${dbFile}.restoring`;
  await copyFile(backup, tmp);
  await rm(`${dbFile}-wal`, { force: true });
  await rm(`${dbFile}-shm`, { force: true });
  await rename(tmp, dbFile);
  return { jobs };
}
