/**
 * `docket <command>`: one module per command group, each exporting run(args). Add a group by adding a line
 * to COMMANDS.
 */
import { CliError } from "./output.ts";

type Command = { summary: string; load: () => Promise<{ run(args: string[]): Promise<void> }> };

const COMMANDS: Record<string, Command> = {
  model: { summary: "pull, list and inspect GGUF models", load: () => import("./model.ts") },
  backup: { summary: "copy the SQLite database while docket runs (online backup)", load: () => import("./backup.ts") },
  restore: { summary: "put a backup in place of the database (producer stopped)", load: () => import("./restore.ts") },
};

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(10)}${c.summary}`);
  return `usage: docket <command> [options]\n\ncommands:\n${lines.join("\n")}\n\nRun docket <command> --help for its options.`;
}

const [name, ...args] = process.argv.slice(2);
if (!name || name === "--help" || name === "-h" || name === "help") {
  console.log(usage());
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
      } else throw err;
    }
  }
}
