import { z } from "zod";

/** The OpenAI chat-completions contract docket answers under /openai/v1 (the subset a local model can honour). */

const TextPart = z.object({ type: z.literal("text"), text: z.string() });

export const OpenAIChatMessage = z.object({
  role: z.enum(["system", "developer", "user", "assistant"]),
  content: z
    .union([z.string(), z.array(TextPart)])
    .nullable()
    .optional(),
  name: z.string().optional(),
});

/** POST /openai/v1/chat/completions body. Fields docket does not use (tools, logprobs, ...) are ignored. */
export const ChatCompletionRequest = z.object({
  model: z.string().max(256),
  messages: z.array(OpenAIChatMessage).min(1).max(256),
  max_tokens: z.number().int().min(1).max(32768).nullish(),
  max_completion_tokens: z.number().int().min(1).max(32768).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  seed: z.number().int().min(0).nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().optional() }).nullish(),
  n: z.literal(1).nullish(),
  user: z.string().optional(),
});
export type ChatCompletionRequest = z.infer<typeof ChatCompletionRequest>;

const FinishReason = z.enum(["stop", "length"]);

export const CompletionUsage = z.object({
  prompt_tokens: z.number(),
  completion_tokens: z.number(),
  total_tokens: z.number(),
  prompt_tokens_details: z.object({ cached_tokens: z.number() }).optional(),
});

export const ChatCompletion = z.object({
  /** `chatcmpl-` + the docket job id (GET /v1/jobs/<job id> shows the job). */
  id: z.string(),
  object: z.literal("chat.completion"),
  created: z.number(),
  model: z.string(),
  choices: z.array(
    z.object({
      index: z.number(),
      message: z.object({ role: z.literal("assistant"), content: z.string(), refusal: z.null() }),
      finish_reason: FinishReason,
      logprobs: z.null(),
    }),
  ),
  usage: CompletionUsage,
});
export type ChatCompletion = z.infer<typeof ChatCompletion>;

/** One `data:` event of a streamed answer; the stream ends with `data: [DONE]`. */
export const ChatCompletionChunk = z.object({
  id: z.string(),
  object: z.literal("chat.completion.chunk"),
  created: z.number(),
  model: z.string(),
  choices: z.array(
    z.object({
      index: z.number(),
      delta: z.object({ role: z.literal("assistant").optional(), content: z.string().optional() }),
      finish_reason: FinishReason.nullable(),
      logprobs: z.null(),
    }),
  ),
  usage: CompletionUsage.nullable().optional(),
});
export type ChatCompletionChunk = z.infer<typeof ChatCompletionChunk>;

export const ModelList = z.object({
  object: z.literal("list"),
  data: z.array(z.object({ id: z.string(), object: z.literal("model"), created: z.number(), owned_by: z.string() })),
});
export type ModelList = z.infer<typeof ModelList>;
