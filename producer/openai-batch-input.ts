import { chatMessagesIssue, type JobMessage } from "../schema/job.ts";
import { ChatCompletionRequest } from "../schema/openai.ts";
import { BatchRequestLine } from "../schema/openai-batch.ts";
import type { OpenAIBatchRow } from "../schema/tables.ts";
import { type ItemContext, isJob, itemToJob } from "./batch-items.ts";
import { ApiError } from "./errors.ts";
import { requestedModel, toMessages } from "./openai-chat.ts";
import { yieldToEventLoop } from "./pipeline.ts";

/** Lines parsed between two yields to the event loop. */
const CHUNK = 500;
/** File-level errors listed on a failed batch; parsing stops past this many. */
const MAX_ERRORS = 100;

export type FileError = NonNullable<OpenAIBatchRow["errors"]>[number];
export type RejectedRequest = NonNullable<OpenAIBatchRow["rejected"]>[number];

export interface BatchInput {
  jobs: JobMessage[];
  /** Well-formed lines whose body is not a valid chat completion request: they go to the error file. */
  rejected: RejectedRequest[];
  /** Malformed lines (not JSON, wrong method or url, duplicate custom_id): the whole batch fails, as OpenAI's does. */
  errors: FileError[];
  /** The model named by the first request, as written (kept for the batch object); each job names its own line's. */
  model: string | null;
}

function issueOf(error: { issues: { path: PropertyKey[]; message: string }[] }): { param?: string; message: string } {
  const issue = error.issues[0];
  const param = issue?.path.map(String).join(".") || undefined;
  return { param, message: param ? `${param}: ${issue?.message}` : (issue?.message ?? "invalid") };
}

/** A request body → the item of a chat job, or why it is refused. */
function bodyToItem(customId: string, body: unknown): { item: unknown } | { code: string; message: string } {
  const parsed = ChatCompletionRequest.safeParse(body);
  if (!parsed.success) return { code: "validation_failed", message: `body.${issueOf(parsed.error).message}` };
  const req = parsed.data;
  if (req.stream) return { code: "validation_failed", message: "body.stream: is not supported in a batch" };
  let messages: ReturnType<typeof toMessages>;
  try {
    messages = toMessages(req);
  } catch (err) {
    if (err instanceof ApiError) return { code: err.code, message: `body.${err.message}` };
    throw err;
  }
  const issue = chatMessagesIssue(messages);
  if (issue) return { code: "validation_failed", message: `body.messages: ${issue}` };
  const maxTokens = req.max_completion_tokens ?? req.max_tokens ?? undefined;
  // Unlike a chat completion, a line naming a model no live worker serves is accepted: its job waits for one.
  const model = requestedModel(req.model);
  return {
    item: {
      customId,
      task: "chat",
      ...(model !== undefined ? { model } : {}),
      params: {
        messages,
        ...(maxTokens ? { maxTokens } : {}),
        ...(req.temperature != null ? { temperature: req.temperature } : {}),
        ...(req.seed != null ? { seed: req.seed } : {}),
      },
    },
  };
}

/** Parses an OpenAI batch input file (JSONL of {custom_id, method, url, body}) into chat jobs of one docket batch. */
export async function parseBatchInput(ctx: ItemContext, content: Uint8Array, maxItems: number): Promise<BatchInput> {
  const out: BatchInput = { jobs: [], rejected: [], errors: [], model: null };
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(content);
  } catch {
    out.errors.push({ code: "invalid_file", message: "the input file is not UTF-8 text" });
    return out;
  }
  const seen = new Set<string>();
  let requests = 0;
  let start = 0;
  for (let lineNo = 1; start < text.length && out.errors.length < MAX_ERRORS; lineNo++) {
    const nl = text.indexOf("\n", start);
    const line = text.slice(start, nl === -1 ? text.length : nl);
    start = nl === -1 ? text.length : nl + 1;
    if (lineNo % CHUNK === 0) await yieldToEventLoop();
    if (line.trim() === "") continue;
    if (++requests > maxItems) {
      out.errors.push({
        code: "too_many_requests",
        message: `a batch holds at most ${maxItems} requests (DOCKET_MAX_BATCH_ITEMS)`,
      });
      break;
    }
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      out.errors.push({ code: "invalid_json_line", line: lineNo, message: `line ${lineNo} is not valid JSON` });
      continue;
    }
    const parsed = BatchRequestLine.safeParse(value);
    if (!parsed.success) {
      const { param, message } = issueOf(parsed.error);
      out.errors.push({
        code: "invalid_request",
        line: lineNo,
        message: `line ${lineNo}: ${message}`,
        ...(param ? { param } : {}),
      });
      continue;
    }
    const { custom_id: customId, body } = parsed.data;
    if (seen.has(customId)) {
      out.errors.push({
        code: "duplicate_custom_id",
        line: lineNo,
        param: "custom_id",
        message: `line ${lineNo}: custom_id "${customId}" is used by an earlier line; each request needs its own`,
      });
      continue;
    }
    seen.add(customId);
    if (out.model === null && typeof body.model === "string") out.model = body.model;
    const item = bodyToItem(customId, body);
    const job = "item" in item ? itemToJob(ctx, item.item) : item;
    if ("v" in job && isJob(job)) out.jobs.push(job);
    else if ("code" in job) out.rejected.push({ customId, line: lineNo, code: job.code, message: job.message });
  }
  if (requests === 0 && out.errors.length === 0)
    out.errors.push({ code: "empty_file", message: "the input file holds no requests" });
  return out;
}
