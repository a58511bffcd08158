import { readFile, stat } from "node:fs/promises";
import { basename, extname } from "node:path";
import type { ParseArgsConfig } from "node:util";
import type { DocumentList, DocumentView } from "../../schema/document.ts";
import { call, commandArgs, submitDocumentTasks } from "./api.ts";
import { CliError, EXIT } from "./output.ts";
import { MIME } from "./submit.ts";

/** `docket documents add|list|delete|tasks`: documents uploaded once, many tasks on each. */

const USAGE = `usage: docket documents add <file> [--title TITLE]      upload a .txt, .md, .pdf or .docx once; prints its id
       docket documents tasks <id> --task summarize [--task classify ...] [--params JSON] [--lane batch] [--webhook-url URL]
                                                          one batch of those tasks on the document; prints its id
       docket documents list [--json]                      your documents, newest first
       docket documents delete <id>                        the document and its text (jobs queued on it fail)
options for all: [--url URL] [--api-key KEY]`;

function args(argv: string[], options: ParseArgsConfig["options"] = {}) {
  return commandArgs(argv, USAGE, options);
}

function one(positionals: string[], what: string): string {
  const [value] = positionals;
  if (!value || positionals.length > 1) throw new CliError(`one ${what} is needed\n${USAGE}`, EXIT.usage);
  return value;
}

/** `--params` as given on the command line, refused early when it is not JSON. */
function jsonParams(params: string | undefined): unknown {
  if (params === undefined) return undefined;
  try {
    return JSON.parse(params);
  } catch {
    throw new CliError(`--params is not valid JSON: ${params}`, EXIT.usage);
  }
}

async function add(argv: string[]): Promise<void> {
  const { values, positionals, t } = args(argv, { title: { type: "string" } });
  if (values.help) return void console.log(USAGE);
  const path = one(positionals, "file");
  const mime = MIME[extname(path).toLowerCase()];
  if (!mime) throw new CliError(`${path}: unsupported file type; send .txt, .md, .pdf or .docx`, EXIT.usage);
  if (!(await stat(path).catch(() => undefined))?.isFile()) throw new CliError(`${path}: no such file`, EXIT.usage);
  const form = new FormData();
  form.append("file", new Blob([await readFile(path)], { type: mime }), basename(path));
  if (typeof values.title === "string") form.append("title", values.title);
  const doc = (await (await call(t, "/v1/documents", { method: "POST", body: form })).json()) as DocumentView;
  console.error(`${doc.id} ${doc.bytes} bytes of text (${doc.title ?? doc.filename ?? "untitled"})`);
  console.log(doc.id);
}

async function tasks(argv: string[]): Promise<void> {
  const { values, positionals, t } = args(argv, {
    task: { type: "string", multiple: true },
    params: { type: "string" },
    lane: { type: "string", default: "batch" },
    "webhook-url": { type: "string" },
  });
  if (values.help) return void console.log(USAGE);
  const id = one(positionals, "document id");
  const names = (values.task as string[] | undefined) ?? [];
  if (names.length === 0) throw new CliError(`at least one --task is needed\n${USAGE}`, EXIT.usage);
  const batch = await submitDocumentTasks(t, id, {
    tasks: names.map((task) => ({ task })),
    params: jsonParams(values.params as string | undefined),
    lane: values.lane as string,
    ...(values["webhook-url"] ? { webhookUrl: values["webhook-url"] as string } : {}),
  });
  console.error(`${batch.total} tasks on ${id} in batch ${batch.id} (${batch.state})`);
  console.log(batch.id);
}

async function list(argv: string[]): Promise<void> {
  const { values, t } = args(argv, { json: { type: "boolean", default: false } });
  if (values.help) return void console.log(USAGE);
  const docs: DocumentView[] = [];
  let cursor: string | null = null;
  do {
    const query: string = cursor ? `?cursor=${encodeURIComponent(cursor)}` : "";
    const page = (await (await call(t, `/v1/documents${query}`)).json()) as DocumentList;
    docs.push(...page.data);
    cursor = page.nextCursor;
  } while (cursor);
  if (values.json) return void console.log(JSON.stringify(docs, null, 2));
  for (const d of docs) console.log(`${d.id}  ${String(d.bytes).padStart(9)} B  ${d.createdAt}  ${d.title ?? d.filename ?? ""}`);
}

async function remove(argv: string[]): Promise<void> {
  const { values, positionals, t } = args(argv);
  if (values.help) return void console.log(USAGE);
  const id = one(positionals, "document id");
  await call(t, `/v1/documents/${encodeURIComponent(id)}`, { method: "DELETE" });
  console.log(`${id} deleted`);
}

const SUBCOMMANDS: Record<string, (argv: string[]) => Promise<void>> = { add, tasks, list, delete: remove };

export async function run(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h") return void console.log(USAGE);
  const sub = SUBCOMMANDS[name];
  if (!sub) throw new CliError(`unknown subcommand "${name}"\n${USAGE}`, EXIT.usage);
  await sub(rest);
}
