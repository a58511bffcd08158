import { parseArgs } from "node:util";
import { loadConfig } from "../../schema/config.ts";
import { backupDatabase } from "../backup.ts";
import { CliError } from "./output.ts";

const USAGE = `usage: docket backup <dest.db> [--db DOCKET_DB]
Copies the SQLite database with SQLite's online backup API: safe while the producer runs.`;

export async function run(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { db: { type: "string" }, help: { type: "boolean", short: "h", default: false } },
  });
  if (values.help) return void console.log(USAGE);
  const dest = positionals[0];
  if (!dest) throw new CliError(`a destination file is needed\n${USAGE}`, 2);
  const source = values.db ?? loadConfig().DOCKET_DB;
  try {
    const r = await backupDatabase(source, dest);
    console.log(`${r.dest}: ${r.jobs} jobs, ${r.pages} pages, ${r.ms} ms (integrity ok)`);
  } catch (err) {
    throw new CliError(`could not back up ${source}: ${(err as Error).message}`);
  }
}
