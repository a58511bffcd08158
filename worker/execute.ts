import type { LlamaGrammar, Token } from "node-llama-cpp";
import type { JobResult, Usage } from "../schema/event.ts";
import type { JobMessage } from "../schema/job.ts";
import {
  chunkCount,
  defaultOverlap,
  MAX_CHUNKS,
  packPartials,
  splitTokens,
  type TextTokenizer,
  truncateText,
} from "./chunking.ts";
import type { Engine } from "./engine.ts";
import { JobFailure } from "./failure.ts";
import { jsonSchemaGrammar } from "./grammar.ts";
import { TASK_DEFINITIONS, type TaskDefinition, type TaskPlan } from "./tasks/index.ts";

/** Tokens kept free between the measured prompt and the context's end (tokenizer merges at the document's edges). */
const SAFETY_TOKENS = 16;
/** Output room a long document's calls keep, at most: a quarter of the context. */
const OUTPUT_SHARE = 4;
/** Tokens the <part n="…"> wrapper of one partial result costs in a reduce prompt. */
const PART_WRAPPER_TOKENS = 12;
/** Less room than this for document text means the prompt alone (a long chat) does not fit. */
const MIN_DOCUMENT_ROOM = 64;

export interface ExecuteOptions {
  engine: Engine;
  /** The document text (inline, or read from the object store). */
  document: string;
  defaultMaxTokens: number;
  signal: AbortSignal;
  /** Called with the number of tokens generated so far (over every call of a long document). */
  onTokens?: (generated: number) => void;
  /** Called with each piece of generated text (only asked for single-call jobs: interactive chat). */
  onText?: (text: string) => void;
}

export type ExecuteResult = Omit<JobResult, "timings"> & { runMs: number };

/** Tokens the prompt takes once the model's chat template wraps it: measured, as LlamaChatSession will render it. */
export function promptTokens(engine: Engine, plan: Pick<TaskPlan, "systemPrompt" | "history" | "prompt">): number {
  return engine.render(plan).length;
}

/**
 * Runs one job's task on the engine. A document that fits runs in one call; a longer one follows
 * params.overflow: "chunk" (default) splits it by tokens with overlap and map-reduces (summarize, ask,
 * extract) or keeps its head and tail (classify, chat), "truncate" keeps head and tail, "fail" refuses
 * with document_too_long. Prompt + output always fit one sequence's context. Calls of one job run one
 * after another on one sequence at a time. Throws JobFailure with a stable code.
 */
export async function executeJob(job: JobMessage, o: ExecuteOptions): Promise<ExecuteResult> {
  const started = Date.now();
  return { ...(await new JobExecution(job, o).run()), runMs: Date.now() - started };
}

class JobExecution {
  private readonly engine: Engine;
  private readonly task: TaskDefinition;
  private readonly requested: number;
  private readonly usage: Required<Usage> = { promptTokens: 0, completionTokens: 0, cachedTokens: 0 };
  private readonly grammars = new Map<string, Promise<LlamaGrammar>>();
  private readonly tokenizer: TextTokenizer<Token>;

  constructor(
    private readonly job: JobMessage,
    private readonly o: ExecuteOptions,
  ) {
    this.engine = o.engine;
    this.task = TASK_DEFINITIONS[job.task];
    this.requested = job.params.maxTokens ?? o.defaultMaxTokens;
    const model = o.engine.model;
    this.tokenizer = { tokenize: (t) => model.tokenize(t), detokenize: (t) => model.detokenize(t) };
  }

  private get contextSize(): number {
    return this.engine.contextSize;
  }

  /** Output room a call on part of a long document keeps. */
  private get outputReserve(): number {
    return Math.min(this.requested, Math.floor(this.contextSize / OUTPUT_SHARE));
  }

  async run(): Promise<Omit<ExecuteResult, "runMs">> {
    const { job, o } = this;
    const whole = this.task.build({ job, document: o.document });
    const wholeTokens = promptTokens(this.engine, whole);
    if (wholeTokens + this.outputReserve + SAFETY_TOKENS <= this.contextSize) {
      return this.result(await this.call(whole, wholeTokens));
    }
    const overflow = job.params.overflow ?? "chunk";
    const sized = `the prompt with the document is ${wholeTokens} tokens and a sequence holds ${this.contextSize} (with ${this.outputReserve} for the output)`;
    if (overflow === "fail") {
      throw new JobFailure("document_too_long", `${sized}; set params.overflow to "chunk" or "truncate" to analyse it anyway`);
    }
    const room = this.documentRoom(this.task.build({ job, document: "", part: { index: 99, count: 99 } }));
    if (room < MIN_DOCUMENT_ROOM) {
      throw new JobFailure(
        "document_too_long",
        `${sized}; the prompt leaves no room for the document (shorten the messages or params)`,
      );
    }
    if (overflow === "truncate" || this.task.longDocument === "truncate") {
      const { text } = truncateText(o.document, this.tokenizer, room);
      const plan = this.task.build({ job, document: text });
      return { ...this.result(await this.call(plan, promptTokens(this.engine, plan))), truncated: true };
    }
    return this.mapReduce(room);
  }

  /** Document tokens that fit next to `plan`'s prompt (built with an empty document) and the output. */
  private documentRoom(plan: TaskPlan): number {
    return this.contextSize - promptTokens(this.engine, plan) - this.outputReserve - SAFETY_TOKENS;
  }

  private async mapReduce(room: number): Promise<Omit<ExecuteResult, "runMs">> {
    const { job, o, task } = this;
    const tokens = this.tokenizer.tokenize(o.document);
    const overlap = defaultOverlap(room);
    const count = chunkCount(tokens.length, room, overlap);
    if (count > MAX_CHUNKS) {
      throw new JobFailure(
        "document_too_long",
        `the document is ${tokens.length} tokens: ${count} chunks of ${room} at this context size, more than the ${MAX_CHUNKS} docket splits a document into`,
      );
    }
    const chunks = splitTokens(tokens, room, overlap);
    const partials: { text: string; json?: unknown }[] = [];
    for (const [index, chunk] of chunks.entries()) {
      const plan = task.build({ job, document: this.tokenizer.detokenize(chunk), part: { index, count } });
      partials.push(await this.call(plan, promptTokens(this.engine, plan)));
    }
    if (task.merge) {
      const json = task.merge(
        job,
        partials.map((p) => p.json),
      );
      return { ...this.result({ text: JSON.stringify(json), json }), chunks: count };
    }
    const reduce = task.reduce;
    if (!reduce) throw new Error(`task ${job.task} has neither merge nor reduce`);
    const reduceRoom = this.documentRoom(reduce(job, [""])) - PART_WRAPPER_TOKENS;
    if (reduceRoom < MIN_DOCUMENT_ROOM) {
      throw new JobFailure("document_too_long", `the reduce prompt leaves ${reduceRoom} tokens for the partial results`);
    }
    let texts = partials.map((p) => p.text);
    for (;;) {
      const groups = packPartials(texts, this.tokenizer, reduceRoom, PART_WRAPPER_TOKENS);
      const next: string[] = [];
      for (const group of groups) {
        if (group.length === 1) next.push(group[0] ?? "");
        else {
          const plan = reduce(job, group);
          next.push((await this.call(plan, promptTokens(this.engine, plan))).text);
        }
      }
      texts = next;
      if (groups.length === 1) break;
    }
    return { ...this.result({ text: texts[0] ?? "" }), chunks: count };
  }

  private result(out: { text: string; json?: unknown }): Omit<ExecuteResult, "runMs"> {
    return {
      text: out.text,
      ...(out.json !== undefined ? { json: out.json } : {}),
      usage: { ...this.usage },
      model: this.engine.modelName,
    };
  }

  private grammar(schema: Record<string, unknown>): Promise<LlamaGrammar> {
    const key = JSON.stringify(schema);
    let grammar = this.grammars.get(key);
    if (!grammar) {
      grammar = jsonSchemaGrammar(this.engine.llama, schema).catch((err: Error) => {
        throw new JobFailure("invalid_params", `params.schema is not a JSON schema docket can decode: ${err.message}`);
      });
      this.grammars.set(key, grammar);
    }
    return grammar;
  }

  /** One generation; `prompt` is the plan's measured prompt size, so the output is cut to what the context has left. */
  private async call(plan: TaskPlan, prompt: number): Promise<{ text: string; json?: unknown }> {
    const { job, o } = this;
    const grammar = plan.jsonSchema ? await this.grammar(plan.jsonSchema) : undefined;
    const room = this.contextSize - prompt - SAFETY_TOKENS;
    if (room < 1) {
      throw new JobFailure("document_too_long", `the prompt is ${prompt} tokens; a sequence holds ${this.contextSize} tokens`);
    }
    const before = this.usage.completionTokens;
    const gen = await this.engine.generate({
      systemPrompt: plan.systemPrompt,
      ...(plan.history ? { history: plan.history } : {}),
      prompt: plan.prompt,
      ...(plan.shared ? { shared: plan.shared } : {}),
      ...(job.input.documentId !== undefined ? { keepPrefix: true } : {}),
      maxTokens: Math.min(this.requested, room),
      ...(job.params.temperature !== undefined ? { temperature: job.params.temperature } : {}),
      ...(job.params.seed !== undefined ? { seed: job.params.seed } : {}),
      ...(grammar ? { grammar } : {}),
      ...(job.params.ignoreEos ? { ignoreEos: true } : {}),
      urgent: job.lane === "interactive",
      signal: o.signal,
      ...(o.onTokens ? { onTokens: (n: number) => o.onTokens?.(before + n) } : {}),
      ...(o.onText ? { onText: o.onText } : {}),
    });
    if (o.signal.aborted) throw o.signal.reason;
    this.usage.promptTokens += gen.promptTokens;
    this.usage.completionTokens += gen.completionTokens;
    this.usage.cachedTokens += gen.cachedTokens;
    return plan.read(gen.text);
  }
}
