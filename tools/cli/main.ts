/**
 * `docket <command>`: one module per command group, each exporting run(args). Add a group by adding a line
 * to COMMANDS.
 */
import { ConfigError } from "../../schema/config.ts";
import { CliError, EXIT } from "./output.ts";

type Command = { summary: string; load: () => Promise<{ run(args: string[]): Promise<void> }> };

const COMMANDS: Record<string, Command> = {
  model: { summary: "pull, list, inspect GGUF models; plan how many sequences fit a GPU", load: () => import("./model.ts") },
  backup: { summary: "copy the SQLite database while docket runs (online backup)", load: () => import("./backup.ts") },
  restore: { summary: "put a backup in place of the database (producer stopped)", load: () => import("./restore.ts") },
  submit: { summary: "submit files, folders or a JSONL file as one batch; prints its id", load: () => import("./submit.ts") },
  documents: {
    summary: "upload a document once (add), run tasks on it as a batch (tasks), list, delete",
    load: () => import("./documents.ts"),
  },
  status: { summary: "a batch's state and counts (--json)", load: () => import("./batch.ts").then((m) => ({ run: m.status })) },
  watch: { summary: "a live progress bar until a batch ends", load: () => import("./batch.ts").then((m) => ({ run: m.watch })) },
  results: {
    summary: "download a batch's results (JSONL, or one file per document)",
    load: () => import("./batch.ts").then((m) => ({ run: m.results })),
  },
  cancel: { summary: "cancel a batch", load: () => import("./batch.ts").then((m) => ({ run: m.cancel })) },
  retry: {
    summary: "run a batch's (or a job's) failed and expired jobs again (--code: one error code)",
    load: () => import("./batch.ts").then((m) => ({ run: m.retry })),
  },
};

const EXIT_CODES = `
exit codes: 0 ok, 1 failure, 2 usage error or invalid configuration, 3 server unreachable or HTTP error,
            4 batch ended failed or cancelled (watch), 5 not found, 6 the plan does not fit (model plan)`;

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(10)}${c.summary}`);
  return `usage: docket <command> [options]\n\ncommands:\n${lines.join("\n")}\n\nRun docket <command> --help for its options.`;
}

const [name, ...args] = process.argv.slice(2);
if (!name || name === "--help" || name === "-h" || name === "help") {
  console.log(usage());
  console.log(EXIT_CODES);
} else {
  const command = COMMANDS[name];
  if (!command) {
    console.error(`docket: unknown command "${name}"\n\n${usage()}`);
    process.exitCode = 2;
  } else {
    try {
      await (await command.load()).run(args);
    } catch (err) {
      if (err instanceof CliError) {
        console.error(`docket ${name}: ${err.message}`);
        process.exitCode = err.exitCode;
      } else if (err instanceof ConfigError) {
        console.error(`docket ${name}: ${err.message}`);
        process.exitCode = EXIT.usage;
      } else throw err;
    }
  }
}
