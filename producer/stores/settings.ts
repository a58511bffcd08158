import { eq } from "drizzle-orm";
import { settings } from "../../schema/tables.ts";
import type { Db } from "../db.ts";

/** The settings table: values the producer generates or learns and keeps with the data. */
export class SettingsStore {
  constructor(private readonly db: Db) {}

  get(key: string): string | undefined {
    return this.db.select({ value: settings.value }).from(settings).where(eq(settings.key, key)).get()?.value;
  }

  /** Stores `value`, replacing the key's value if it has one. */
  put(key: string, value: string, at = new Date().toISOString()): void {
    this.db
      .insert(settings)
      .values({ key, value, createdAt: at })
      .onConflictDoUpdate({ target: settings.key, set: { value } })
      .run();
  }

  /** Stores `value` unless the key has one; returns the value kept (the first writer's). */
  putIfAbsent(key: string, value: string, at = new Date().toISOString()): string {
    this.db.insert(settings).values({ key, value, createdAt: at }).onConflictDoNothing().run();
    return this.get(key) ?? value;
  }
}
