import { availableParallelism } from "node:os";
import { basename } from "node:path";
import {
  type ChatHistoryItem,
  type ChatWrapper,
  type EvaluationPriority,
  getLlama,
  type Llama,
  LlamaChatSession,
  type LlamaContext,
  type LlamaContextSequence,
  type LlamaGrammar,
  LlamaLogLevel,
  type LlamaModel,
  resolveChatWrapper,
  type Token,
  TokenBias,
} from "node-llama-cpp";
import type { Logger } from "../runtime/log.ts";
import {
  type DecodeStepStats,
  LockGate,
  lockstep,
  noDecodeSteps,
  StepBudget,
  URGENT_PRIORITY,
  urgentFirst,
} from "./batch-priority.ts";
import { commonPrefixLength, MIN_PREFIX_TOKENS, PrefixCache, type PrefixSource } from "./prefix-cache.ts";

export interface EngineOptions {
  modelPath: string;
  /** DOCKET_FALLBACK_MODEL, resolved: the last step of the degradation ladder. */
  fallbackModelPath?: string;
  /** Name reported in results; defaults to the GGUF's general.name or the file name. */
  modelName?: string;
  gpu: "auto" | false | "cuda" | "vulkan" | "metal";
  /** llama.cpp math threads; 0 picks the default for this machine. */
  threads: number;
  /**
   * Most tokens of batch-lane work in one decode step (DOCKET_STEP_TOKENS): an interactive job arriving mid-step waits
   * for it. Unset: the context's whole batch.
   */
  stepTokens?: number;
  /** While people's jobs are about, the most milliseconds of prompt work in a batch-lane step (DOCKET_STEP_MS); 0: off. */
  stepMs?: number;
  /** How long a decode step waits for a sequence of the previous one (DOCKET_LOCKSTEP_MS); 0: off. Unset: LOCKSTEP_WAIT_MS. */
  lockstepMs?: number;
  /** Sequences in the one context: how many jobs decode together. */
  sequences: number;
  /** Tokens per sequence; capped at the model's training context. */
  contextSize: number;
  /**
   * Reuse of evaluated document prefixes across jobs (worker/prefix-cache.ts): sequences keep their state
   * between jobs and checkpoints go to `dir` within `budgetBytes`. `reuse: false`: every job evaluates its
   * whole prompt (the benchmark's "reuse off"; results are the same). Unset: reuse off.
   */
  prefixCache?: { reuse: boolean; dir: string; budgetBytes: number };
  /**
   * Layers of the main model on the GPU (node-llama-cpp's loadModel `gpuLayers`: the last N repeating layers,
   * N = layers + 1 adds the output layer); the rest stay in system memory. Unset: node-llama-cpp's "auto".
   * node-llama-cpp sets it to 0 when there is no GPU. The fallback model always loads with "auto".
   */
  gpuLayers?: number;
  log: Logger;
}

/**
 * All cores but one: Node's event loop (sampling, NATS, events) and, under `npm start`, the producer and
 * nats-server need a core. A start-up measurement picked 2 threads on the 2-core dev VM (prompt
 * processing of a quiet machine gains from them) while decoding under load ran at 45-56 tok/s with 2 and
 * 65 with 1 on the same backlog (issue 9), so the default is not measured at start-up but fixed here;
 * `npm run bench:worker` prints decoding at both counts. DOCKET_THREADS overrides it.
 */
export function defaultThreads(cores = availableParallelism()): number {
  return Math.max(1, cores - 1);
}

const NO_REUSE = { reuse: false, dir: "", budgetBytes: 0 };

/** The smallest per-sequence context the degradation ladder goes down to. */
const MIN_CONTEXT = 512;

/** The context sizes the ladder tries: the one asked for, then halves while at least MIN_CONTEXT. */
function contextLadder(first: number): number[] {
  const sizes = [first];
  for (let c = Math.floor(first / 2); c >= MIN_CONTEXT; c = Math.floor(c / 2)) sizes.push(c);
  return sizes;
}

export class EngineLoadError extends Error {
  readonly code = "engine_unavailable";
}

const modelName = (model: LlamaModel, path: string) => String(model.fileInfo.metadata?.general?.name ?? basename(path));

/**
 * A token bias that forbids every end-of-generation token of the model (EOS, EOT, the chat template's end
 * of turn): params.ignoreEos, and the benchmark's raw engine runs.
 */
export function endOfGenerationBias(model: LlamaModel): TokenBias {
  const bias = new TokenBias(model.tokenizer);
  // TokenBias.set() skips end-of-generation tokens on purpose, so they go straight into the map that
  // node-llama-cpp 3.21 (pinned) hands to the sampler; test/integration/ignore-eos.test.ts fails if that changes.
  const biases = (bias as unknown as { _biases: Map<number, number> })._biases;
  for (const token of model.iterateAllTokens()) if (model.isEogToken(token)) biases.set(token, -Infinity);
  return bias;
}

/** A prompt as the chat session renders it: system text, earlier turns, the user's message. */
export interface PromptParts {
  systemPrompt?: string;
  /** Earlier turns (chat). */
  history?: ChatHistoryItem[];
  prompt: string;
}

export interface GenerateRequest extends PromptParts {
  /** The head of the prompt that depends only on the document (TaskPlan.shared): reused across jobs. */
  shared?: PromptParts;
  /** More jobs on this document are expected (it was named, not inlined): checkpoint its prefix now. */
  keepPrefix?: boolean;
  maxTokens: number;
  temperature?: number;
  seed?: number;
  grammar?: LlamaGrammar;
  /** Never sample an end-of-generation token: the answer runs to maxTokens (benchmarks, load tests). */
  ignoreEos?: boolean;
  /** A person waits (interactive lane): this sequence's tokens go first into every decode step. */
  urgent?: boolean;
  signal?: AbortSignal;
  /** Called with the number of tokens generated so far. */
  onTokens?: (generated: number) => void;
  /** Called with each piece of text as it is generated (streamed chat answers). */
  onText?: (text: string) => void;
}

export interface GenerateResult {
  text: string;
  stopReason: string;
  /** Tokens of the rendered prompt, reused or evaluated. */
  promptTokens: number;
  /** Of those, document-prefix tokens whose evaluated state was reused (a live sequence or a checkpoint). */
  cachedTokens: number;
  completionTokens: number;
}

/** A prefix lookup, for metrics: where the prefix came from and how many prompt tokens it saved. */
export type PrefixListener = (source: PrefixSource, reusedTokens: number) => void;

/** One model, one context with N sequences, and a pool handing those sequences to jobs. */
export class Engine {
  private readonly free: LlamaContextSequence[];
  private readonly all: readonly LlamaContextSequence[];
  private readonly waiters: ((s: LlamaContextSequence) => void)[] = [];
  /** When each sequence last ended a job: with reuse on, the least recently used state is overwritten first. */
  private readonly lastUsed = new Map<LlamaContextSequence, number>();
  private useClock = 0;
  /** Told of every document prefix a job needed (worker metrics). */
  onPrefix?: PrefixListener;

  private constructor(
    readonly llama: Llama,
    readonly model: LlamaModel,
    readonly context: LlamaContext,
    sequences: LlamaContextSequence[],
    readonly modelName: string,
    /** Document prefixes: evaluated first, reused when EngineOptions.prefixCache.reuse. */
    readonly prefixes: PrefixCache,
    /** Interactive generations running now (read by the context's decode-step policy). */
    private readonly urgent: { running: number },
    /** What the decode steps carried since load (lockstep batching): worker metrics, tests, the benchmark. */
    readonly steps: DecodeStepStats,
    /** Lets erases and state saves/loads in between decode steps (LockGate). */
    private readonly gate: LockGate,
    /** The model's chat template, resolved once: "auto" in every session would match the Jinja template per job. */
    readonly chatWrapper: ChatWrapper = resolveChatWrapper(model),
  ) {
    this.free = [...sequences];
    this.all = sequences;
  }

  static async load(o: EngineOptions): Promise<Engine> {
    const started = Date.now();
    const llama = await getLlama({
      gpu: o.gpu,
      maxThreads: o.threads || availableParallelism(),
      logLevel: LlamaLogLevel.warn,
      logger: (level, message) => {
        const text = message.trim();
        if (!text) return;
        if (level === LlamaLogLevel.error || level === LlamaLogLevel.fatal) o.log.error({ llama: text }, "llama.cpp");
        else o.log.warn({ llama: text }, "llama.cpp");
      },
    });
    const tried: string[] = [];
    for (const modelPath of [o.modelPath, ...(o.fallbackModelPath ? [o.fallbackModelPath] : [])]) {
      let model: LlamaModel;
      try {
        const gpuLayers = modelPath === o.modelPath ? o.gpuLayers : undefined;
        model = await llama.loadModel({ modelPath, ...(gpuLayers !== undefined ? { gpuLayers } : {}) });
      } catch (err) {
        tried.push(`${basename(modelPath)}: ${(err as Error).message}`);
        o.log.warn(
          { step: "model", model: basename(modelPath), err: (err as Error).message },
          "degradation: model failed to load",
        );
        continue;
      }
      if (modelPath !== o.modelPath)
        o.log.warn({ step: "fallback model", model: basename(modelPath) }, "degradation: using the fallback model");
      const threads = o.threads || defaultThreads();
      // Interactive generations running now: the decode-step policy holds batch work back while any runs.
      const urgent = { running: 0 };
      const urgentRunning = () => urgent.running > 0;
      const steps = noDecodeSteps();
      // Erases, state saves and loads get the context's lock between two decode steps, not when every job has ended.
      const gate = new LockGate();
      // The ladder: fewer sequences first, then a smaller context.
      for (const contextSize of contextLadder(Math.min(o.contextSize, model.trainContextSize))) {
        for (let sequences = o.sequences; sequences >= 1; sequences = Math.floor(sequences / 2)) {
          try {
            const context = await model.createContext({
              sequences,
              contextSize,
              threads,
              failedCreationRemedy: false,
              batching: {
                // No fixed step cap unless set, on a CPU too: a cap is shared by the sequences in the step (128
                // tokens: 4 prompts advanced 32 a step, and the worker at batch 4 ran 0.77x as fast, bench model, 37.3
                // vs 48.2 tok/s). Only while people's jobs are about, a time budget keeps the steps short (StepBudget).
                itemPrioritizationStrategy: lockstep(
                  urgentFirst(urgentRunning, o.stepTokens, o.stepMs ? new StepBudget(o.stepMs) : undefined),
                  steps,
                  o.lockstepMs,
                  urgentRunning,
                  gate,
                ),
              },
            });
            gate.attach(context);
            const pool = Array.from({ length: sequences }, () => context.getSequence());
            const name = modelPath === o.modelPath ? (o.modelName ?? modelName(model, modelPath)) : modelName(model, modelPath);
            o.log.info(
              {
                model: name,
                sequences,
                contextSize,
                threads,
                gpu: llama.gpu,
                gpuLayers: model.gpuLayers,
                loadMs: Date.now() - started,
                degraded: tried.length > 0,
              },
              "model loaded",
            );
            const prefixes = new PrefixCache({
              ...(o.prefixCache ?? NO_REUSE),
              modelPath,
              align: context.batchSize,
              locked: (op) => gate.run(op),
              log: o.log,
            });
            return new Engine(llama, model, context, pool, name, prefixes, urgent, steps, gate);
          } catch (err) {
            tried.push(`${basename(modelPath)} ${sequences}×${contextSize}: ${(err as Error).message}`);
            o.log.warn(
              {
                step: sequences > 1 ? "fewer sequences" : "smaller context",
                sequences,
                contextSize,
                err: (err as Error).message,
              },
              "degradation: context could not be created",
            );
          }
        }
      }
      await model.dispose();
    }
    await disposeLlama(llama);
    throw new EngineLoadError(`no model/context combination could be created; tried:\n  ${tried.join("\n  ")}`);
  }

  get sequences(): number {
    return this.context.totalSequences;
  }

  /** Tokens each sequence holds. */
  get contextSize(): number {
    return this.context.contextSize;
  }

  /** Tokens every sequence has generated since load, read live from their token meters (tokens/s metric, batcher). */
  get generatedTokens(): number {
    let n = 0;
    for (const s of this.all) n += s.tokenMeter.usedOutputTokens;
    return n;
  }

  countTokens(text: string): number {
    return this.model.tokenize(text).length;
  }

  /** The prompt's tokens exactly as LlamaChatSession will evaluate them (chat template applied). */
  render(parts: PromptParts): Token[] {
    const chatHistory: ChatHistoryItem[] = [
      ...(parts.systemPrompt !== undefined ? [{ type: "system" as const, text: parts.systemPrompt }] : []),
      ...(parts.history ?? []),
      { type: "user", text: parts.prompt },
      { type: "model", response: [] },
    ];
    return this.chatWrapper.generateContextState({ chatHistory }).contextText.tokenize(this.model.tokenizer);
  }

  /**
   * A free sequence for a prompt whose first `shared` tokens are its document prefix. With reuse on: one that
   * holds the whole prefix (best: exactly the prefix, nothing to erase); else an empty one; else the least
   * recently used. Erasing needs the context's lock, which node-llama-cpp's decode loop holds while any
   * sequence has tokens queued, so under load an erase at a job's start could wait seconds (measured: an
   * interactive job's p95 went to 16 s behind a 16-sequence backlog): sequences are trimmed after their job
   * instead (release) and one empty sequence is kept ready.
   */
  private acquire(tokens: readonly Token[], shared: number): Promise<LlamaContextSequence> {
    if (this.free.length === 0) return new Promise((resolve) => this.waiters.push(resolve));
    let pick = this.free.length - 1;
    if (this.prefixes.reuse) {
      const end = Math.min(shared, tokens.length - 1);
      let hit = -1;
      let hitExact = false;
      let empty = -1;
      let lru = -1;
      for (const [i, s] of this.free.entries()) {
        if (end >= MIN_PREFIX_TOKENS && s.compareContextTokens(tokens as Token[]).firstDifferentIndex >= end) {
          const exact = s.nextTokenIndex === end;
          if (hit < 0 || (exact && !hitExact)) [hit, hitExact] = [i, exact];
        }
        if (empty < 0 && s.nextTokenIndex === 0) empty = i;
        const used = this.lastUsed.get(s) ?? 0;
        if (lru < 0 || used < (this.lastUsed.get(this.free[lru] as LlamaContextSequence) ?? 0)) lru = i;
      }
      pick = hit >= 0 ? hit : empty >= 0 ? empty : lru;
    }
    const [s] = this.free.splice(pick, 1);
    return Promise.resolve(s as LlamaContextSequence);
  }

  /** Sequences being trimmed after their job: close() waits for them. */
  private readonly settling = new Set<Promise<void>>();

  /**
   * Gives a sequence back once it holds at most its first `keep` tokens (the document prefix the next job on
   * that document reuses; 0 empties it). The trim runs after the job, which does not wait for it.
   */
  private release(s: LlamaContextSequence, keep: number): void {
    this.lastUsed.set(s, ++this.useClock);
    if (s.nextTokenIndex <= keep) {
      this.handBack(s);
      return;
    }
    const settled: Promise<void> = this.gate
      .run(() => s.eraseContextTokenRanges([{ start: keep, end: s.nextTokenIndex }]))
      .catch(() => this.gate.run(() => s.clearHistory()).catch(() => undefined))
      .then(() => {
        this.settling.delete(settled);
        this.handBack(s);
      });
    this.settling.add(settled);
  }

  private handBack(s: LlamaContextSequence): void {
    const waiter = this.waiters.shift();
    if (waiter) {
      waiter(s);
      return;
    }
    this.free.push(s);
    // One empty sequence stays ready, so a job on a new document (an interactive one above all) starts
    // without an erase: the least recently used document gives way.
    if (!this.prefixes.reuse || this.free.length < 2 || this.free.some((f) => f.nextTokenIndex === 0)) return;
    let lru = 0;
    for (const [i, f] of this.free.entries()) {
      if ((this.lastUsed.get(f) ?? 0) < (this.lastUsed.get(this.free[lru] as LlamaContextSequence) ?? 0)) lru = i;
    }
    const [oldest] = this.free.splice(lru, 1);
    if (oldest) this.release(oldest, 0);
  }

  private eogBias?: TokenBias;

  private noEndOfGeneration(): TokenBias {
    this.eogBias ??= endOfGenerationBias(this.model);
    return this.eogBias;
  }

  async generate(req: GenerateRequest): Promise<GenerateResult> {
    const tokens = this.render(req);
    const shared = req.shared ? commonPrefixLength(tokens, this.render(req.shared)) : 0;
    const sequence = await this.acquire(tokens, shared);
    let keep = 0;
    const meterBefore = sequence.tokenMeter.getState();
    const evaluationPriority: EvaluationPriority = req.urgent ? URGENT_PRIORITY : 3;
    let cachedTokens = 0;
    const session = new LlamaChatSession({
      contextSequence: sequence,
      autoDisposeSequence: false,
      chatWrapper: this.chatWrapper,
      ...(req.systemPrompt !== undefined ? { systemPrompt: req.systemPrompt } : {}),
    });
    if (req.urgent) this.urgent.running++;
    try {
      const outcome = await this.prefixes.prepare(sequence, tokens, shared, {
        ...(req.keepPrefix ? { keep: true } : {}),
        evaluationPriority,
      });
      if (outcome) {
        cachedTokens = outcome.reusedTokens;
        if (this.prefixes.reuse) keep = Math.min(shared, tokens.length - 1);
        this.onPrefix?.(outcome.source, outcome.reusedTokens);
      }
      if (req.history?.length) {
        session.setChatHistory([
          ...(req.systemPrompt ? [{ type: "system" as const, text: req.systemPrompt }] : []),
          ...req.history,
        ]);
      }
      let generated = 0;
      const res = await session.promptWithMeta(req.prompt, {
        maxTokens: req.maxTokens,
        ...(req.temperature !== undefined ? { temperature: req.temperature } : {}),
        ...(req.seed !== undefined ? { seed: req.seed } : {}),
        ...(req.grammar ? { grammar: req.grammar } : {}),
        ...(req.ignoreEos ? { tokenBias: this.noEndOfGeneration() } : {}),
        // node-llama-cpp fills each decode step by priority (default 5): bulk work yields to a waiting person.
        evaluationPriority,
        ...(req.signal ? { signal: req.signal, stopOnAbortSignal: false } : {}),
        ...(req.onText ? { onTextChunk: req.onText } : {}),
        onToken: (tokens) => {
          generated += tokens.length;
          req.onTokens?.(generated);
        },
      });
      const used = sequence.tokenMeter.diff(meterBefore);
      return {
        text: res.responseText,
        stopReason: res.stopReason,
        promptTokens: tokens.length,
        cachedTokens,
        completionTokens: used.usedOutputTokens,
      };
    } finally {
      session.dispose({ disposeSequence: false });
      if (req.urgent) this.urgent.running--;
      // With reuse on, the document prefix stays for the next job on it; off, every job starts empty.
      this.release(sequence, keep);
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.settling);
    await this.prefixes.close();
    for (const s of this.free) await s.dispose?.();
    await this.context.dispose();
    await this.model.dispose();
    await disposeLlama(this.llama);
  }
}

/**
 * node-llama-cpp 3.21's llama.dispose() never settles once a model failed to load under a custom
 * logger (seen with a truncated GGUF): bound the wait, the process is ending anyway.
 */
async function disposeLlama(llama: Llama): Promise<void> {
  await Promise.race([llama.dispose(), new Promise((r) => setTimeout(r, 2_000).unref())]);
}
