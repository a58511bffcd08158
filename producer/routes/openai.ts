import type { Context } from "hono";
import { streamSSE } from "hono/streaming";
import type { EventMessage } from "../../schema/event.ts";
import { chatMessagesIssue, TERMINAL_STATES } from "../../schema/job.ts";
import { type ChatCompletionChunk, ChatCompletionRequest, type ModelList } from "../../schema/openai.ts";
import type { JobRow } from "../../schema/tables.ts";
import { principalOf } from "../auth/principal.ts";
import { ApiError } from "../errors.ts";
import { buildJobMessage } from "../job-message.ts";
import {
  completionUsage,
  DEFAULT_MODEL_ID,
  finishReason,
  jobErrorBody,
  requestedModel,
  toChatCompletion,
  toMessages,
} from "../openai-chat.ts";
import type { Recorder } from "../recorder.ts";
import type { Route } from "../route.ts";
import { type SubmitDeps, submitJob } from "../submit.ts";
import { parseJson } from "../validate.ts";
import type { WorkerRegistry } from "../worker-registry.ts";

export interface OpenAIRoutesDeps extends SubmitDeps {
  recorder: Recorder;
  /** maxTokens a chat job gets when the request sets none (DOCKET_MAX_TOKENS): tells "length" from "stop". */
  defaultMaxTokens: number;
  chatTimeoutMs: number;
  /** Which models live workers serve: GET /models, and the check a chat completion's `model` passes. */
  workerRegistry: WorkerRegistry;
}

/**
 * OpenAI-compatible chat completions: each request becomes a `chat` job on the interactive lane,
 * answered when the recorder sees it finish. Streaming sends the role at once, then the text as the
 * worker generates it (its progress events carry text deltas for interactive chats), then the finish.
 */
async function chatCompletion(c: Context, deps: OpenAIRoutesDeps): Promise<Response> {
  const { store, recorder, log } = deps;
  const req = await parseJson(c, ChatCompletionRequest);
  const messages = toMessages(req);
  const issue = chatMessagesIssue(messages);
  if (issue) throw new ApiError("validation_failed", `messages: ${issue}`, "messages");
  const model = requestedModel(req.model);
  // A person waits for the answer: a model no live worker serves is refused now, not after the timeout. (A job
  // naming no model waits for a default worker as before; /v1/jobs and batches queue for any model.)
  if (model !== undefined && deps.workerRegistry.serving(model).length === 0) {
    const served = deps.workerRegistry.models().map((m) => m.id);
    throw new ApiError(
      "model_not_served",
      `no worker serves model ${model}: use ${[DEFAULT_MODEL_ID, ...served].join(", ")} (GET /openai/v1/models)`,
      "model",
    );
  }
  const maxTokens = req.max_completion_tokens ?? req.max_tokens ?? undefined;
  const msg = buildJobMessage({
    lane: "interactive",
    task: "chat",
    model,
    input: {},
    params: {
      messages,
      ...(maxTokens ? { maxTokens } : {}),
      ...(req.temperature != null ? { temperature: req.temperature } : {}),
      ...(req.seed != null ? { seed: req.seed } : {}),
    },
  });
  await submitJob(deps, msg, { owner: principalOf(c).keyId });
  log.info({ jobId: msg.id, stream: req.stream === true }, "chat completion submitted");

  const id = `chatcmpl-${msg.id}`;
  const created = Math.floor(Date.parse(msg.submittedAt) / 1000);
  const finished = async (): Promise<JobRow> => {
    try {
      await recorder.waitFor(msg.id, TERMINAL_STATES, () => store.get(msg.id)?.state, deps.chatTimeoutMs);
    } catch {
      throw new ApiError(
        "timeout",
        `job ${msg.id} did not finish within ${deps.chatTimeoutMs} ms; follow it at /v1/jobs/${msg.id}`,
      );
    }
    return store.get(msg.id)!;
  };
  const budget = maxTokens ?? deps.defaultMaxTokens;

  if (!req.stream) {
    const row = await finished();
    if (row.state !== "succeeded" || !row.result) {
      const { status, body } = jobErrorBody(row);
      return c.json(body, status);
    }
    return c.json(toChatCompletion(row, row.result, budget));
  }

  return streamSSE(c, async (stream) => {
    const chunk = (
      row: JobRow | undefined,
      delta: ChatCompletionChunk["choices"][0]["delta"],
      finish: "stop" | "length" | null,
    ) =>
      stream.writeSSE({
        data: JSON.stringify({
          id,
          object: "chat.completion.chunk",
          created,
          model: row?.result?.model ?? req.model,
          choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }],
          ...(req.stream_options?.include_usage ? { usage: null } : {}),
        } satisfies ChatCompletionChunk),
      });
    await chunk(undefined, { role: "assistant", content: "" }, null);
    // The worker streams the answer in progress events (delta at offset). What reaches the client is the
    // answer as the job will store it: leading whitespace dropped, trailing whitespace held back until
    // more text follows, so the chunks add up to the final text exactly.
    let received = "";
    let emitted = "";
    let writing = Promise.resolve();
    const onProgress = (e: EventMessage) => {
      if (e.jobId !== msg.id) return;
      if (e.delta === undefined || e.offset !== received.length) {
        // No text (or a lost event): a comment keeps idle proxies from closing the stream.
        writing = writing.then(() => stream.write(": progress\n\n")).then(() => undefined);
        return;
      }
      received += e.delta;
      const visible = received.trimStart().trimEnd();
      if (visible.length <= emitted.length || !visible.startsWith(emitted)) return;
      const piece = visible.slice(emitted.length);
      emitted = visible;
      writing = writing.then(() => chunk(undefined, { content: piece }, null));
    };
    recorder.on("progress", onProgress);
    let row: JobRow;
    try {
      row = await finished();
    } catch (err) {
      const e = err as ApiError;
      await stream.writeSSE({ data: JSON.stringify({ error: { code: e.code, message: e.message, type: "server_error" } }) });
      return;
    } finally {
      recorder.off("progress", onProgress);
      await writing;
    }
    if (row.state !== "succeeded" || !row.result) {
      await stream.writeSSE({ data: JSON.stringify(jobErrorBody(row).body) });
      return;
    }
    // What the progress events did not carry (the tail, or all of it for a short answer).
    const rest = row.result.text.startsWith(emitted) ? row.result.text.slice(emitted.length) : "";
    if (rest) await chunk(row, { content: rest }, null);
    await chunk(row, {}, finishReason(row.result, budget));
    if (req.stream_options?.include_usage) {
      await stream.writeSSE({
        data: JSON.stringify({
          id,
          object: "chat.completion.chunk",
          created,
          model: row.result.model,
          choices: [],
          usage: completionUsage(row.result),
        } satisfies ChatCompletionChunk),
      });
    }
    await stream.writeSSE({ data: "[DONE]" });
  });
}

function models(c: Context, deps: OpenAIRoutesDeps): Response {
  // What live workers serve now (their heartbeats), and `docket`, the default model's alias, which is always
  // accepted. Deployment facts, the same for every key, as OpenAI's list is.
  const served = deps.workerRegistry.models().filter((m) => m.id !== DEFAULT_MODEL_ID);
  const created = (iso: string) => Math.floor(Date.parse(iso) / 1000) || 0;
  return c.json({
    object: "list",
    data: [
      { id: DEFAULT_MODEL_ID, object: "model", created: 0, owned_by: "docket" },
      ...served.map((m) => ({ id: m.id, object: "model" as const, created: created(m.since), owned_by: "docket" })),
    ],
  } satisfies ModelList);
}

/** /openai/v1 chat completions and models, for the official openai client with `baseURL` pointed there. */
export const openaiRoutes: Route<OpenAIRoutesDeps>[] = [
  {
    method: "post",
    path: "/openai/v1/chat/completions",
    access: "key",
    tag: "openai",
    summary: "OpenAI-compatible chat completion (a chat job on the interactive lane)",
    description:
      "Answers when the job finishes. `model` names a model live workers serve (GET /openai/v1/models) or `docket`, the default model; a model no live worker serves is 404 `model_not_served`. With `stream: true` the answer is `text/event-stream` of `chat.completion.chunk` events ending with `data: [DONE]`.",
    body: "ChatCompletionRequest",
    responses: {
      "200": { description: "The completion, or its chunks when streaming.", schema: "ChatCompletion" },
      "400": "Error",
      "404": "Error",
      "429": "Error",
      "504": "Error",
    },
    handler: chatCompletion,
  },
  {
    method: "get",
    path: "/openai/v1/models",
    access: "key",
    tag: "openai",
    summary: "Models live workers serve now, and `docket` (the default model)",
    responses: { "200": "ModelList" },
    handler: models,
  },
];
