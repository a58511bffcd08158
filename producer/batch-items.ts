import { missingForTask } from "../schema/api.ts";
import { BatchItem, type BatchOptions, type RejectedItem } from "../schema/batch.ts";
import { API_ERROR_CODES, type ApiErrorCode } from "../schema/errors.ts";
import type { JobInput, JobMessage } from "../schema/job.ts";
import { ApiError } from "./errors.ts";
import type { Extracted } from "./extraction/extract.ts";
import { buildJobMessage } from "./job-message.ts";
import { pipelined, yieldToEventLoop } from "./pipeline.ts";
import { decodeUtf8 } from "./validate.ts";

const NEWLINE = 0x0a;

/** Items validated between two yields to the event loop. */
const CHUNK = 500;

export interface ItemContext {
  options: BatchOptions;
  batchId: string;
  submittedAt: string;
  maxDocument: number;
  /** The input of an uploaded document (documentInput) that items without `text` are about. */
  document?: JobInput;
}

/**
 * One batch item → its job message, or why it is refused (field paths relative to the item). `ocrPages`: the pages
 * of an uploaded file that OCR read, recorded in the job's input.
 */
export function itemToJob(
  ctx: ItemContext,
  raw: unknown,
  ocrPages?: number[],
): JobMessage | Omit<RejectedItem, "line" | "index"> {
  const parsed = BatchItem.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue?.path.join(".") || undefined;
    return { code: "validation_failed", message: field ? `${field}: ${issue?.message}` : (issue?.message ?? "invalid"), field };
  }
  const item = parsed.data;
  const task = item.task ?? ctx.options.task;
  const params = item.params ? { ...ctx.options.params, ...item.params } : ctx.options.params;
  const onDocument = item.text === undefined && ctx.document !== undefined;
  const missing = missingForTask(task, !!item.text || onDocument, params);
  if (missing) {
    const field = missing.path[0] === "input" ? "text" : missing.path.join(".");
    return { code: "validation_failed", message: `${field}: ${missing.message}`, field };
  }
  if (item.text !== undefined && item.text.length > ctx.maxDocument / 4 && Buffer.byteLength(item.text) > ctx.maxDocument)
    return {
      code: "payload_too_large",
      message: `text is ${Buffer.byteLength(item.text)} bytes; the largest document accepted is ${ctx.maxDocument} bytes (DOCKET_MAX_DOCUMENT_BYTES)`,
      field: "text",
    };
  return buildJobMessage({
    lane: ctx.options.lane,
    task,
    model: item.model ?? ctx.options.model,
    input: {
      ...(onDocument ? ctx.document : {}),
      ...(item.text !== undefined ? { text: item.text } : {}),
      ...(item.title ? { title: item.title } : {}),
      ...(item.mime ? { mime: item.mime } : {}),
      ...(ocrPages?.length ? { ocrPages } : {}),
    },
    params,
    batchId: ctx.batchId,
    customId: item.customId,
    submittedAt: ctx.submittedAt,
    deadline: ctx.options.deadline,
  });
}

const isJob = (x: JobMessage | Omit<RejectedItem, "line" | "index">): x is JobMessage => "v" in x;

function tooMany(max: number, field = "items"): ApiError {
  return new ApiError("validation_failed", `a batch holds at most ${max} items (DOCKET_MAX_BATCH_ITEMS); split it`, field);
}

/**
 * A JSON items array: strict, like any JSON body: the first bad item is a 400 naming `<name>.<i>.<field>`
 * (`name`: the array's field in the body).
 */
export async function jobsFromArray(
  ctx: ItemContext,
  items: readonly unknown[],
  maxItems: number,
  name = "items",
): Promise<JobMessage[]> {
  if (items.length > maxItems) throw tooMany(maxItems, name);
  const jobs: JobMessage[] = [];
  for (let i = 0; i < items.length; i++) {
    if (i > 0 && i % CHUNK === 0) await yieldToEventLoop();
    const r = itemToJob(ctx, items[i]);
    if (!isJob(r)) {
      const field = `${name}.${i}${r.field ? `.${r.field}` : ""}`;
      throw new ApiError(
        r.code === "payload_too_large" ? "payload_too_large" : "validation_failed",
        `${name}.${i}${r.field ? "." : ": "}${r.message}`,
        field,
      );
    }
    jobs.push(r);
  }
  return jobs;
}

/**
 * A JSONL upload, one item per line, read from the body stream line by line: good lines are accepted,
 * bad ones reported by line number (blank lines are skipped).
 */
export async function jobsFromJsonl(
  ctx: ItemContext,
  body: ReadableStream<Uint8Array> | null,
  maxItems: number,
): Promise<{ jobs: JobMessage[]; rejected: RejectedItem[] }> {
  const jobs: JobMessage[] = [];
  const rejected: RejectedItem[] = [];
  let lineNo = 0;
  const take = (line: string) => {
    lineNo++;
    if (line.trim() === "") return;
    if (jobs.length + rejected.length >= maxItems) throw tooMany(maxItems);
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      rejected.push({ line: lineNo, code: "invalid_json", message: `line ${lineNo} is not valid JSON` });
      return;
    }
    const r = itemToJob(ctx, value);
    if (isJob(r)) jobs.push(r);
    else rejected.push({ line: lineNo, ...r, message: `line ${lineNo}: ${r.message}` });
  };
  if (!body) return { jobs, rejected };
  // Split on the newline byte, then decode each line strictly: 0x0A never occurs inside a multi-byte
  // UTF-8 sequence, and a line that is not UTF-8 refuses the whole upload naming its line number.
  const line = (bytes: Uint8Array) => take(decodeUtf8(bytes, `line ${lineNo + 1}`));
  let rest: Uint8Array[] = [];
  let sinceYield = 0;
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    let start = 0;
    let nl = chunk.indexOf(NEWLINE);
    while (nl !== -1) {
      const part = chunk.subarray(start, nl);
      line(rest.length ? Buffer.concat([...rest, part]) : part);
      rest = [];
      start = nl + 1;
      nl = chunk.indexOf(NEWLINE, start);
      if (++sinceYield >= CHUNK) {
        sinceYield = 0;
        await yieldToEventLoop();
      }
    }
    if (start < chunk.length) rest.push(chunk.subarray(start));
  }
  if (rest.length) line(Buffer.concat(rest));
  return { jobs, rejected };
}

/** Files whose text is read at once per upload: as many as the extraction pool has threads by default. */
const FILES_IN_FLIGHT = 2;

/** Refusals that are the server's, not a file's: the whole upload is answered with them (retry it later). */
const NOT_THE_FILES: readonly string[] = ["backpressure", "unavailable"];

/**
 * A multipart upload's files: each readable file becomes a job (its name its customId and title), each unusable one
 * (unsupported type, not UTF-8, corrupt, empty, scanned with OCR off, over a limit) a rejection naming the file
 * with its code, so that one bad file does not cost the folder. Jobs keep the files' order.
 */
export async function jobsFromFiles(
  ctx: ItemContext,
  files: readonly File[],
  extract: (file: { name: string; type: string; bytes: Uint8Array }) => Promise<Extracted>,
): Promise<{ jobs: JobMessage[]; rejected: RejectedItem[] }> {
  const outcomes: (JobMessage | RejectedItem)[] = new Array(files.length);
  const reject = (i: number, file: File, code: string, message: string) => {
    outcomes[i] = { file: file.name, code, message, field: `files[${file.name}]` };
  };
  await pipelined(files.keys(), FILES_IN_FLIGHT, async (i) => {
    const f = files[i] as File;
    let extracted: Extracted;
    try {
      extracted = await extract({ name: f.name, type: f.type, bytes: new Uint8Array(await f.arrayBuffer()) });
    } catch (err) {
      if (!(err instanceof ApiError) || NOT_THE_FILES.includes(err.code)) throw err;
      return reject(i, f, err.code, err.message);
    }
    const item = { text: extracted.text, customId: f.name, title: f.name, mime: f.type || undefined };
    const r = itemToJob(ctx, item, extracted.ocrPages);
    if (isJob(r)) outcomes[i] = r;
    else reject(i, f, r.code, `${f.name}: ${r.message}`);
  });
  return {
    jobs: outcomes.filter((o): o is JobMessage => "v" in o),
    rejected: outcomes.filter((o): o is RejectedItem => !("v" in o)),
  };
}

/**
 * The answer to an upload none of whose files or lines was accepted: the first refusal's code and status, with
 * every refusal listed in `rejected` (all problems at once, not one per attempt).
 */
export function nothingAccepted(rejected: readonly RejectedItem[], what: "file" | "line"): ApiError {
  const first = rejected[0];
  if (!first) return new ApiError("validation_failed", "the upload holds no items");
  const code = (first.code in API_ERROR_CODES ? first.code : "validation_failed") as ApiErrorCode;
  const message =
    rejected.length === 1
      ? `no ${what} was accepted; ${first.message}`
      : `none of the ${rejected.length} ${what}s was accepted; ${first.message}; ...`;
  return new ApiError(
    code,
    message,
    first.field,
    {},
    { rejected: { count: rejected.length, items: rejected.slice(0, MAX_REPORTED) } },
  );
}

/** Rejected lines or files listed in an answer; `count` says how many there were in all. */
export const MAX_REPORTED = 100;

export { isJob };
