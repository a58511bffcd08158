import { randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import { basename, extname, join, relative } from "node:path";
import { parseArgs } from "node:util";
import { missingForTask } from "../../schema/api.ts";
import { BatchOptions, type BatchView, type RejectedItem } from "../../schema/batch.ts";
import { PRESET_NAMES } from "../../schema/job.ts";
import { type ApiTarget, call, describeRejected, submitDocumentTasks, TARGET_OPTIONS, target } from "./api.ts";
import { CliError, EXIT, progressBar } from "./output.ts";

const USAGE = `usage: docket submit <files|folders|file.jsonl> [--task summarize] [--params '{"maxTokens":200}']
                     [--preset legal|medical] [--lane batch] [--model NAME] [--webhook-url URL] [--url URL] [--api-key KEY]
       docket submit --document <id> [--task summarize] [--params ...] [--lane batch] [--model NAME] [--webhook-url URL]

Submits the documents as ONE batch and prints its id on stdout (id=$(docket submit docs/)).
Files: .txt, .md, .pdf, .docx, and scans as .png, .jpg, .tiff (read by OCR, as are PDF pages without
text); folders are walked recursively (other files are skipped, and listed) and each document's
customId is its path inside the folder. A single .jsonl file is sent as a JSONL batch, one item per
line. The task, params and key are checked before anything is uploaded; the upload shows a progress
bar on stderr; files the server cannot use are listed with their reasons, the rest is accepted.
--preset legal|medical: the extract task with that ready schema (--task extract --params '{"preset":...}').
--model: the model to run the documents, as workers serve it (GET /openai/v1/models); default: the default model.
--document: the task on an uploaded document (docket documents add), as a batch of one; for several
tasks on it, docket documents tasks.`;

/** The file types docket extracts text from, by extension. */
export const MIME: Record<string, string> = {
  ".txt": "text/plain",
  ".text": "text/plain",
  ".md": "text/markdown",
  ".markdown": "text/markdown",
  ".pdf": "application/pdf",
  ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".tif": "image/tiff",
  ".tiff": "image/tiff",
};

const READABLE = ".txt, .md, .pdf, .docx, .png, .jpg or .tiff";
/** Skipped files named on stderr, at most; a count says the rest. */
const MAX_LISTED = 20;

interface Upload {
  path: string;
  /** Becomes the document's customId. */
  name: string;
  size: number;
}

async function walk(dir: string, root: string, out: Upload[], skipped: string[]): Promise<void> {
  const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name));
  for (const e of entries) {
    const path = join(dir, e.name);
    if (e.isDirectory()) await walk(path, root, out, skipped);
    else if (e.isFile() && MIME[extname(e.name).toLowerCase()])
      out.push({ path, name: relative(root, path).split("\\").join("/"), size: (await stat(path)).size });
    else skipped.push(path);
  }
}

async function collect(paths: string[]): Promise<{ uploads: Upload[]; skipped: string[] }> {
  const uploads: Upload[] = [];
  const skipped: string[] = [];
  for (const p of paths) {
    const s = await stat(p).catch(() => undefined);
    if (!s) throw new CliError(`${p}: no such file or folder`, EXIT.usage);
    if (s.isDirectory()) await walk(p, p, uploads, skipped);
    else if (MIME[extname(p).toLowerCase()]) uploads.push({ path: p, name: basename(p), size: s.size });
    else throw new CliError(`${p}: unsupported file type; send ${READABLE}, or one .jsonl`, EXIT.usage);
  }
  return { uploads, skipped };
}

/** multipart/form-data built as a stream, so a folder of documents is never held in memory at once. */
function multipart(fields: Record<string, string>, uploads: Upload[]) {
  const boundary = `docket-${randomBytes(12).toString("hex")}`;
  const quote = (s: string) => s.replace(/"/g, "%22").replace(/\r/g, "%0D").replace(/\n/g, "%0A");
  const head = Buffer.from(
    Object.entries(fields)
      .map(([k, v]) => `--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`)
      .join(""),
  );
  const parts = uploads.map((u) => ({
    u,
    header: Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="files"; filename="${quote(u.name)}"\r\nContent-Type: ${MIME[extname(u.name).toLowerCase()]}\r\n\r\n`,
    ),
  }));
  const tail = Buffer.from(`--${boundary}--\r\n`);
  const length = head.length + parts.reduce((n, p) => n + p.header.length + p.u.size + 2, 0) + tail.length;
  async function* chunks(): AsyncGenerator<Buffer> {
    yield head;
    for (const p of parts) {
      yield p.header;
      for await (const chunk of createReadStream(p.u.path)) yield chunk as Buffer;
      yield Buffer.from("\r\n");
    }
    yield tail;
  }
  return { contentType: `multipart/form-data; boundary=${boundary}`, length, chunks };
}

async function* fileChunks(path: string): AsyncGenerator<Buffer> {
  for await (const chunk of createReadStream(path)) yield chunk as Buffer;
}

/** A request body that reports the bytes handed to the connection (fetch pulls as the socket drains). */
function counted(chunks: AsyncGenerator<Buffer>, total: number): ReadableStream<Uint8Array> {
  const bar = progressBar("upload");
  let sent = 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const next = await chunks.next();
      if (next.done) {
        bar.update(total, total);
        bar.done();
        controller.close();
        return;
      }
      controller.enqueue(next.value);
      sent += next.value.length;
      bar.update(sent, total);
    },
  });
}

const parseSubmitArgs = (args: string[]) =>
  parseArgs({
    args,
    allowPositionals: true,
    options: {
      task: { type: "string" },
      params: { type: "string" },
      preset: { type: "string" },
      lane: { type: "string", default: "batch" },
      model: { type: "string" },
      "webhook-url": { type: "string" },
      document: { type: "string" },
      ...TARGET_OPTIONS,
      help: { type: "boolean", short: "h", default: false },
    },
  });

export async function run(argv: string[]): Promise<void> {
  let parsed: ReturnType<typeof parseSubmitArgs>;
  try {
    parsed = parseSubmitArgs(argv);
  } catch (err) {
    throw new CliError(`${(err as Error).message}\n${USAGE}`, EXIT.usage);
  }
  const { values, positionals } = parsed;
  if (values.help) return void console.log(USAGE);
  if (values.document !== undefined && positionals.length > 0)
    throw new CliError(`--document submits an uploaded document: give it no files\n${USAGE}`, EXIT.usage);
  if (values.document === undefined && positionals.length === 0) throw new CliError(`nothing to submit\n${USAGE}`, EXIT.usage);
  const options = batchOptions(values);
  const t = target(values);
  if (values.document !== undefined) {
    const batch = await submitDocumentTasks(t, values.document, {
      tasks: [{ task: options.task }],
      lane: options.lane,
      ...(options.model ? { model: options.model } : {}),
      ...(Object.keys(options.params).length ? { params: options.params } : {}),
      ...(options.webhookUrl ? { webhookUrl: options.webhookUrl } : {}),
    });
    console.error(`${options.task} on ${values.document} in batch ${batch.id} (${batch.state})`);
    return void console.log(batch.id);
  }
  const fields: Record<string, string> = {
    task: options.task,
    lane: options.lane,
    ...(options.model ? { model: options.model } : {}),
    ...(Object.keys(options.params).length ? { params: JSON.stringify(options.params) } : {}),
    ...(options.webhookUrl ? { webhookUrl: options.webhookUrl } : {}),
  };

  let res: Response;
  const jsonl = positionals.filter((p) => extname(p).toLowerCase() === ".jsonl");
  if (jsonl.length > 0) {
    if (positionals.length > 1) throw new CliError("a .jsonl file is submitted on its own, as one batch", EXIT.usage);
    const file = jsonl[0]!;
    const s = await stat(file).catch(() => undefined);
    if (!s?.isFile()) throw new CliError(`${file}: no such file`, EXIT.usage);
    await checkAccess(t);
    res = await call(t, `/v1/batches?${new URLSearchParams(fields)}`, {
      method: "POST",
      headers: { "content-type": "application/x-ndjson", "content-length": String(s.size) },
      body: counted(fileChunks(file), s.size),
      duplex: "half",
    });
  } else {
    const { uploads, skipped } = await collect(positionals);
    if (skipped.length) {
      console.error(
        `skipped ${skipped.length} ${skipped.length === 1 ? "file" : "files"} that docket does not read (${READABLE}):`,
      );
      for (const path of skipped.slice(0, MAX_LISTED)) console.error(`  ${path}`);
      if (skipped.length > MAX_LISTED) console.error(`  ... and ${skipped.length - MAX_LISTED} more`);
    }
    if (uploads.length === 0) throw new CliError(`no ${READABLE} files found`, EXIT.usage);
    await checkAccess(t);
    const body = multipart(fields, uploads);
    res = await call(t, "/v1/batches", {
      method: "POST",
      headers: { "content-type": body.contentType, "content-length": String(body.length) },
      body: counted(body.chunks(), body.length),
      duplex: "half",
    });
  }
  const batch = (await res.json()) as BatchView & { rejected?: { count: number; items: RejectedItem[] } };
  if (batch.rejected?.count) console.error(describeRejected(batch.rejected, jsonl.length > 0 ? "line" : "file"));
  console.error(`${batch.total} documents in batch ${batch.id} (${batch.state})`);
  console.log(batch.id);
}

/**
 * The batch's task, lane, model, params and webhook checked here with the server's own schema (schema/batch.ts) and task
 * rules, so that a typo costs no upload. --preset is --task extract with params.preset.
 */
function batchOptions(values: ReturnType<typeof parseSubmitArgs>["values"]): BatchOptions {
  let params: Record<string, unknown> = {};
  if (values.params !== undefined) {
    try {
      params = JSON.parse(values.params);
    } catch {
      throw new CliError(`--params is not valid JSON: ${values.params}`, EXIT.usage);
    }
  }
  let task = values.task ?? "summarize";
  if (values.preset !== undefined) {
    if (!(PRESET_NAMES as readonly string[]).includes(values.preset))
      throw new CliError(`--preset: "${values.preset}" is not one of ${PRESET_NAMES.join(", ")}`, EXIT.usage);
    if (values.task !== undefined && values.task !== "extract")
      throw new CliError(`--preset runs the extract task; it does not go with --task ${values.task}`, EXIT.usage);
    task = "extract";
    params = { ...params, preset: values.preset };
  }
  const parsed = BatchOptions.safeParse({
    task,
    lane: values.lane,
    model: values.model,
    params,
    webhookUrl: values["webhook-url"],
  });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = issue?.path.join(".") ?? "";
    const option = path === "webhookUrl" ? "--webhook-url" : path.startsWith("params") ? `--params ${path}` : `--${path}`;
    throw new CliError(`${option}: ${issue?.message}`, EXIT.usage);
  }
  const missing = missingForTask(parsed.data.task, true, parsed.data.params);
  if (missing) throw new CliError(`--params ${missing.path.join(".")}: ${missing.message}`, EXIT.usage);
  return parsed.data;
}

/** One cheap authenticated request before an upload: a wrong or missing key, or no server, costs no upload. */
async function checkAccess(t: ApiTarget): Promise<void> {
  await call(t, "/v1/jobs?limit=1");
}
