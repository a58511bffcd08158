import { createWriteStream } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join, resolve, sep } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ParseArgsConfig } from "node:util";
import type { JobView } from "../../schema/api.ts";
import { type BatchResultLine, type BatchRetried, type BatchView, TERMINAL_BATCH_STATES } from "../../schema/batch.ts";
import { call, commandArgs, describeBatch, finishes, getBatch } from "./api.ts";
import { CliError, EXIT, progressBar } from "./output.ts";

/** `docket status|watch|results|cancel|retry <batchId>`: one batch, through the producer's HTTP API. */

function args(argv: string[], usage: string, options: ParseArgsConfig["options"] = {}) {
  const { values, positionals, t } = commandArgs(argv, usage, options);
  if (values.help) {
    console.log(usage);
    return undefined;
  }
  const id = positionals[0];
  if (!id || positionals.length > 1) throw new CliError(`one batch id is needed\n${usage}`, EXIT.usage);
  return { id, values: values as Record<string, string | boolean | undefined>, t };
}

const TARGET_USAGE = "[--url URL] [--api-key KEY]";

export async function status(argv: string[]): Promise<void> {
  const usage = `usage: docket status <batchId> [--json] ${TARGET_USAGE}\nPrints the batch's state and counts (--json: the batch object).`;
  const a = args(argv, usage, { json: { type: "boolean", default: false } });
  if (!a) return;
  const b = await getBatch(a.t, a.id);
  console.log(a.values.json ? JSON.stringify(b, null, 2) : describeBatch(b));
}

export async function watch(argv: string[]): Promise<void> {
  const usage = `usage: docket watch <batchId> [--interval 1] ${TARGET_USAGE}
Shows a progress bar until the batch ends, then prints its state and counts.
Exits 0 when it completed, 4 when it failed, was cancelled or expired.`;
  const a = args(argv, usage, { interval: { type: "string", default: "1" } });
  if (!a) return;
  const seconds = Number(a.values.interval);
  if (!(seconds > 0)) throw new CliError(`--interval must be a positive number of seconds`, EXIT.usage);
  let b: BatchView | undefined;
  // While jobs are queued the producer estimates when the last one finishes (its queue estimate).
  const bar = progressBar("batch", process.stderr, (done, total) => `${done}/${total} documents${finishes(b?.queue)}`);
  for (;;) {
    b = await getBatch(a.t, a.id);
    bar.update(b.progress.done, b.progress.total);
    if (TERMINAL_BATCH_STATES.includes(b.state)) break;
    await new Promise((r) => setTimeout(r, seconds * 1000));
  }
  bar.done();
  console.log(describeBatch(b));
  if (b.state !== "completed") process.exitCode = EXIT.batchEnded;
}

/** A customId as a path inside `dir`: separators kept, anything that would leave the folder neutralised. */
export function resultPath(dir: string, name: string): string {
  const safe = name
    .split(/[/\\]+/)
    .filter((s) => s !== "" && s !== "." && s !== "..")
    .map((s) => s.replace(/[\0:]/g, "_"))
    .join(sep);
  const root = resolve(dir);
  const path = resolve(root, `${safe || "_"}.json`);
  return path.startsWith(root + sep) ? path : join(root, "_.json");
}

export async function results(argv: string[]): Promise<void> {
  const usage = `usage: docket results <batchId> [--out results.jsonl | --dir outdir] ${TARGET_USAGE}
Downloads the results as JSONL (to stdout, or --out FILE), or with --dir one <customId>.json per document.`;
  const a = args(argv, usage, { out: { type: "string" }, dir: { type: "string" } });
  if (!a) return;
  const { out, dir } = a.values as { out?: string; dir?: string };
  if (out && dir) throw new CliError("choose --out or --dir, not both", EXIT.usage);
  const res = await call(a.t, `/v1/batches/${encodeURIComponent(a.id)}/results`);
  const body = Readable.fromWeb(res.body as import("node:stream/web").ReadableStream<Uint8Array>);
  if (!dir) {
    await pipeline(body, out ? createWriteStream(out) : process.stdout);
    return;
  }
  let rest = "";
  let count = 0;
  const write = async (line: string) => {
    if (line.trim() === "") return;
    const r = JSON.parse(line) as BatchResultLine;
    const path = resultPath(dir, r.customId ?? r.jobId);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, `${JSON.stringify(r, null, 2)}\n`);
    count++;
  };
  for await (const chunk of body) {
    rest += chunk.toString();
    const lines = rest.split("\n");
    rest = lines.pop() ?? "";
    for (const l of lines) await write(l);
  }
  await write(rest);
  console.error(`${count} results written to ${dir}`);
}

export async function retry(argv: string[]): Promise<void> {
  const usage = `usage: docket retry <batchId|jobId> [--code CODE] ${TARGET_USAGE}
Runs failed and expired jobs again as their next attempt, each with the remedy for its error
(document_too_long: chunked; output_truncated: maxTokens doubled; a passed deadline dropped).
A batch id retries its failed and expired jobs (--code: only those with that error code); a job id, that job.`;
  const a = args(argv, usage, { code: { type: "string" } });
  if (!a) return;
  const code = a.values.code as string | undefined;
  if (a.id.startsWith("job_")) {
    if (code) throw new CliError("--code applies to a batch; a job is retried whatever its error", EXIT.usage);
    const res = await call(a.t, `/v1/jobs/${encodeURIComponent(a.id)}/retry`, { method: "POST" });
    const job = (await res.json()) as JobView;
    console.log(`${job.id} ${job.state} (attempt ${job.attempts})${finishes(job.queue)}`);
    return;
  }
  const query = code ? `?code=${encodeURIComponent(code)}` : "";
  const res = await call(a.t, `/v1/batches/${encodeURIComponent(a.id)}/retry${query}`, { method: "POST" });
  const b = (await res.json()) as BatchRetried;
  console.error(`retried ${b.retried} jobs`);
  console.log(describeBatch(b));
}

export async function cancel(argv: string[]): Promise<void> {
  const usage = `usage: docket cancel <batchId> ${TARGET_USAGE}\nCancels the batch's queued jobs at once and its running ones as workers see the flag.`;
  const a = args(argv, usage);
  if (!a) return;
  const res = await call(a.t, `/v1/batches/${encodeURIComponent(a.id)}/cancel`, { method: "POST" });
  console.log(describeBatch((await res.json()) as BatchView));
}
