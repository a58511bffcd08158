import { parseArgs } from "node:util";
import { loadConfig } from "../../schema/config.ts";
import { restoreDatabase } from "../backup.ts";
import { CliError } from "./output.ts";

const USAGE = `usage: docket restore <backup.db> [--db DOCKET_DB]
Stop the producer first. The backup is checked (integrity_check), then replaces the database;
the producer's next start applies any newer migrations and the recorder catches up from DOCKET_EVENTS.`;

export async function run(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { db: { type: "string" }, help: { type: "boolean", short: "h", default: false } },
  });
  if (values.help) return void console.log(USAGE);
  const backup = positionals[0];
  if (!backup) throw new CliError(`a backup file is needed\n${USAGE}`, 2);
  const dbFile = values.db ?? loadConfig().DOCKET_DB;
  try {
    const { jobs } = await restoreDatabase(backup, dbFile);
    console.log(`${dbFile}: restored from ${backup} (${jobs} jobs)`);
  } catch (err) {
    throw new CliError(`could not restore ${backup}: ${(err as Error).message}`);
  }
}
