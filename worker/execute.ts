import type { LlamaGrammar } from "node-llama-cpp";
import type { JobResult } from "../schema/event.ts";
import type { JobMessage } from "../schema/job.ts";
import type { Engine } from "./engine.ts";
import { JobFailure } from "./failure.ts";
import { TASK_BUILDERS } from "./tasks/index.ts";

/** Chat-template tokens around the prompt that countTokens does not see. */
const TEMPLATE_OVERHEAD_TOKENS = 32;

export interface ExecuteOptions {
  engine: Engine;
  /** The document text (inline, or read from the object store). */
  document: string;
  defaultMaxTokens: number;
  signal: AbortSignal;
  /** Called with the number of tokens generated so far. */
  onTokens?: (generated: number) => void;
}

/**
 * Runs one job's task on the engine: prompt from the task template, JSON-schema grammar where the task
 * needs one, prompt + output fitted into one sequence's context. Throws JobFailure with a stable code.
 */
export async function executeJob(job: JobMessage, o: ExecuteOptions): Promise<Omit<JobResult, "timings"> & { runMs: number }> {
  const started = Date.now();
  const { engine } = o;
  const plan = TASK_BUILDERS[job.task]({ job, document: o.document });
  let grammar: LlamaGrammar | undefined;
  if (plan.jsonSchema) {
    try {
      grammar = await engine.llama.createGrammarForJsonSchema(plan.jsonSchema as never);
    } catch (err) {
      throw new JobFailure("invalid_params", `params.schema is not a JSON schema docket can decode: ${(err as Error).message}`);
    }
  }
  const historyText = (plan.history ?? [])
    .map((h) => ("text" in h ? h.text : h.type === "model" ? h.response.join("") : ""))
    .join("\n");
  const promptTokens = engine.countTokens(`${plan.systemPrompt}\n${historyText}\n${plan.prompt}`) + TEMPLATE_OVERHEAD_TOKENS;
  const room = engine.contextSize - promptTokens;
  if (room < 16) {
    throw new JobFailure(
      "document_too_long",
      `the prompt is ${promptTokens} tokens; a sequence holds ${engine.contextSize} tokens`,
    );
  }
  const maxTokens = Math.min(job.params.maxTokens ?? o.defaultMaxTokens, room);
  const gen = await engine.generate({
    systemPrompt: plan.systemPrompt,
    ...(plan.history ? { history: plan.history } : {}),
    prompt: plan.prompt,
    maxTokens,
    ...(job.params.temperature !== undefined ? { temperature: job.params.temperature } : {}),
    ...(job.params.seed !== undefined ? { seed: job.params.seed } : {}),
    ...(grammar ? { grammar } : {}),
    signal: o.signal,
    ...(o.onTokens ? { onTokens: o.onTokens } : {}),
  });
  if (o.signal.aborted) throw o.signal.reason;
  const out = plan.read(gen.text);
  return {
    text: out.text,
    ...(out.json !== undefined ? { json: out.json } : {}),
    usage: { promptTokens: gen.promptTokens, completionTokens: gen.completionTokens },
    model: engine.modelName,
    runMs: Date.now() - started,
  };
}
