import { type ParseArgsConfig, parseArgs } from "node:util";
import type { BatchView, RejectedItem } from "../../schema/batch.ts";
import { loadConfig } from "../../schema/config.ts";
import type { QueueEstimate } from "../../schema/queue.ts";
import { CliError, EXIT } from "./output.ts";

/** Where the CLI's batch commands send requests: --url / --api-key, else DOCKET_URL / DOCKET_API_KEY. */
export interface ApiTarget {
  url: string;
  apiKey?: string;
}

export const TARGET_OPTIONS = {
  url: { type: "string" },
  "api-key": { type: "string" },
} as const;

/**
 * A command's arguments: its own options plus --url, --api-key and --help; a parse error is a usage error
 * that prints `usage`. Returns the values, the positionals and the API target.
 */
export function commandArgs(argv: string[], usage: string, options: ParseArgsConfig["options"] = {}) {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { ...TARGET_OPTIONS, help: { type: "boolean", short: "h", default: false }, ...options },
    });
  } catch (err) {
    throw new CliError(`${(err as Error).message}\n${usage}`, EXIT.usage);
  }
  const values = parsed.values as Record<string, string | string[] | boolean | undefined>;
  return { values, positionals: parsed.positionals, t: target(values as { url?: string; "api-key"?: string }) };
}

export function target(values: { url?: string; "api-key"?: string }): ApiTarget {
  const config = loadConfig();
  const url = values.url ?? config.DOCKET_URL ?? `http://${config.DOCKET_HOST}:${config.DOCKET_PORT}`;
  const apiKey = values["api-key"] ?? config.DOCKET_API_KEY;
  return { url: url.replace(/\/+$/, ""), ...(apiKey ? { apiKey } : {}) };
}

/**
 * One HTTP call to the producer. An unreachable server and an error answer become CliErrors with the
 * documented exit codes (404 → notFound, anything else → http), carrying the server's error message.
 */
export async function call(t: ApiTarget, path: string, init: RequestInit & { duplex?: "half" } = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (t.apiKey) headers.set("authorization", `Bearer ${t.apiKey}`);
  let res: Response;
  try {
    res = await fetch(`${t.url}${path}`, { ...init, headers });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new CliError(
      `cannot reach ${t.url} (${cause?.code ?? cause?.message ?? (err as Error).message}); is the producer running? (--url, DOCKET_URL)`,
      EXIT.http,
    );
  }
  if (res.ok) return res;
  let message = `${res.status} ${res.statusText}`;
  try {
    const body = (await res.json()) as {
      error?: { code?: string; message?: string; rejected?: { count: number; items: RejectedItem[] } };
    };
    if (body.error?.message) message = `${body.error.message} (${body.error.code ?? res.status})`;
    if (body.error?.rejected) message = describeRejected(body.error.rejected, "file", "not accepted");
  } catch {
    // Not a docket error body: the status line says enough.
  }
  throw new CliError(message, res.status === 404 ? EXIT.notFound : EXIT.http);
}

export async function getBatch(t: ApiTarget, id: string): Promise<BatchView> {
  return (await (await call(t, `/v1/batches/${encodeURIComponent(id)}`)).json()) as BatchView;
}

/** POST /v1/documents/:id/jobs: tasks on an uploaded document, as one batch (`documents tasks`, `submit --document`). */
export async function submitDocumentTasks(
  t: ApiTarget,
  id: string,
  body: { tasks: { task: string }[]; params?: unknown; lane?: string; model?: string; webhookUrl?: string },
): Promise<BatchView> {
  const res = await call(t, `/v1/documents/${encodeURIComponent(id)}/jobs`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return (await res.json()) as BatchView;
}

/**
 * `batch_… in_progress 3/10 done (succeeded 2, failed 1, cancelled 0, running 2, queued 5)`, and while jobs are
 * queued `; next in line #4, finishes ~14:05:09 (in 3m 20s)`; in a lane shared between keys, where the batch's next job
 * is not its key's next too, `#4 (#2 of its key's)`.
 */
export function describeBatch(b: BatchView, now = Date.now()): string {
  const c = b.counts;
  const q = b.queue;
  const key = q && q.keyPosition !== q.position ? ` (#${q.keyPosition} of its key's)` : "";
  const eta = q ? `; next in line #${q.position}${key}${finishes(q, now)}` : "";
  return `${b.id} ${b.state} ${b.progress.done}/${b.progress.total} done (succeeded ${c.succeeded}, failed ${c.failed}, cancelled ${c.cancelled}, running ${c.running}, queued ${c.queued})${eta}`;
}

/** `, finishes ~14:05:09 (in 3m 20s)` from a queue estimate, or "" when it has no time yet. */
export function finishes(q: QueueEstimate | null | undefined, now = Date.now()): string {
  if (!q?.estimatedFinishAt) return "";
  const at = new Date(q.estimatedFinishAt);
  return `, finishes ~${at.toTimeString().slice(0, 8)} (in ${duration(at.getTime() - now)})`;
}

/** 42s, 3m 20s, 2h 05m. */
export function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/**
 * Every refused file or line of an upload, one per line: `  scan.pdf: scanned_document: this PDF has no text layer; ...`.
 * The server lists the first 100; `count` says how many there were.
 */
export function describeRejected(
  rejected: { count: number; items: RejectedItem[] },
  unit: "file" | "line",
  verb = "not accepted (the others were)",
): string {
  const lines = rejected.items.map((r) => {
    const name = r.file ?? (r.line !== undefined ? `line ${r.line}` : `item ${r.index}`);
    const prefix = `${name}: `;
    const reason = r.message.startsWith(prefix) ? r.message.slice(prefix.length) : r.message;
    return `  ${name}: ${r.code}: ${reason}`;
  });
  const more = rejected.count > rejected.items.length ? [`  ... and ${rejected.count - rejected.items.length} more`] : [];
  return [`${rejected.count} ${unit}${rejected.count === 1 ? " was" : "s were"} ${verb}:`, ...lines, ...more].join("\n");
}
