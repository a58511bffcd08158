import type { ChatMessage } from "../schema/job.ts";
import { toModelName } from "../schema/model.ts";
import type { ChatCompletion, ChatCompletionRequest } from "../schema/openai.ts";
import type { JobRow } from "../schema/tables.ts";
import { ApiError } from "./errors.ts";

/** How chat jobs read and answer in OpenAI's shapes: shared by chat completions and the Batch API. */

/** The model name OpenAI requests use for the deployment's default model; GET /models always lists it. */
export const DEFAULT_MODEL_ID = "docket";

/**
 * The model an OpenAI request's `model` names: `docket` (or nothing usable) is the default model (undefined);
 * any other name goes through toModelName, as the workers' names do.
 */
export function requestedModel(model: string): string | undefined {
  const name = toModelName(model);
  return name === "" || name === DEFAULT_MODEL_ID ? undefined : name;
}

export function toMessages(req: Pick<ChatCompletionRequest, "messages">): ChatMessage[] {
  return req.messages.map((m, i) => {
    const content = typeof m.content === "string" ? m.content : (m.content ?? []).map((p) => p.text).join("");
    if (m.role === "user" && !content)
      throw new ApiError("validation_failed", `messages.${i}.content: is empty`, `messages.${i}.content`);
    return { role: m.role === "developer" ? "system" : m.role, content };
  });
}

/**
 * A failed or cancelled chat job as an OpenAI-style error body (the openai client reads error.message). A job its
 * batch's expiry cancelled has code `batch_expired`, as OpenAI reports unfinished requests of an expired batch.
 */
export function jobErrorBody(row: Pick<JobRow, "id" | "state" | "error">) {
  const code = row.state === "cancelled" ? (row.error?.code ?? "cancelled") : (row.error?.code ?? "internal");
  const permanent = row.error && !row.error.retryable && row.error.code !== "max_deliveries";
  return {
    status: (permanent ? 400 : 500) as 400 | 500,
    body: {
      error: {
        code,
        message: row.error?.message ?? `job ${row.id} was ${row.state}`,
        type: permanent ? "invalid_request_error" : "server_error",
        param: null,
      },
    },
  };
}

export function completionUsage(result: NonNullable<JobRow["result"]>) {
  const u = result.usage;
  return {
    prompt_tokens: u.promptTokens,
    completion_tokens: u.completionTokens,
    total_tokens: u.promptTokens + u.completionTokens,
    // OpenAI's field for prompt tokens served from its prompt cache: docket's reused document prefix.
    prompt_tokens_details: { cached_tokens: u.cachedTokens ?? 0 },
  };
}

/** "length" when the job used its whole token budget (the job's maxTokens, else DOCKET_MAX_TOKENS). */
export function finishReason(result: NonNullable<JobRow["result"]>, maxTokens: number): "stop" | "length" {
  return result.usage.completionTokens >= maxTokens ? "length" : "stop";
}

/** The chat.completion object for a succeeded chat job. */
export function toChatCompletion(
  row: Pick<JobRow, "id" | "submittedAt">,
  result: NonNullable<JobRow["result"]>,
  maxTokens: number,
): ChatCompletion {
  return {
    id: `chatcmpl-${row.id}`,
    object: "chat.completion",
    created: Math.floor(Date.parse(row.submittedAt) / 1000),
    model: result.model,
    choices: [
      {
        index: 0,
        message: { role: "assistant", content: result.text, refusal: null },
        finish_reason: finishReason(result, maxTokens),
        logprobs: null,
      },
    ],
    usage: completionUsage(result),
  };
}
