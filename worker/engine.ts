import { availableParallelism } from "node:os";
import { basename } from "node:path";
import {
  type ChatHistoryItem,
  getLlama,
  type Llama,
  LlamaChatSession,
  type LlamaContext,
  type LlamaContextSequence,
  type LlamaGrammar,
  LlamaLogLevel,
  type LlamaModel,
} from "node-llama-cpp";
import type { Logger } from "../ops/log.ts";

export interface EngineOptions {
  modelPath: string;
  /** Name reported in results; defaults to the GGUF's general.name or the file name. */
  modelName?: string;
  gpu: "auto" | false | "cuda" | "vulkan" | "metal";
  /** llama.cpp math threads; 0 picks the default for this machine. */
  threads: number;
  /** Sequences in the one context: how many jobs decode together. */
  sequences: number;
  /** Tokens per sequence; capped at the model's training context. */
  contextSize: number;
  log: Logger;
}

/**
 * On a 2-core machine one math thread ran a small model about 20x faster than two, because Node's
 * event loop and llama.cpp's threads compete for the cores: leave one core to the process.
 */
export function defaultThreads(cores = availableParallelism()): number {
  return Math.max(1, cores - 1);
}

export interface GenerateRequest {
  systemPrompt?: string;
  /** Earlier turns (chat). */
  history?: ChatHistoryItem[];
  prompt: string;
  maxTokens: number;
  temperature?: number;
  seed?: number;
  grammar?: LlamaGrammar;
  signal?: AbortSignal;
  /** Called with the number of tokens generated so far. */
  onTokens?: (generated: number) => void;
}

export interface GenerateResult {
  text: string;
  stopReason: string;
  promptTokens: number;
  completionTokens: number;
}

/** One model, one context with N sequences, and a pool handing those sequences to jobs. */
export class Engine {
  private readonly free: LlamaContextSequence[];
  private readonly waiters: ((s: LlamaContextSequence) => void)[] = [];

  private constructor(
    readonly llama: Llama,
    readonly model: LlamaModel,
    readonly context: LlamaContext,
    sequences: LlamaContextSequence[],
    readonly modelName: string,
  ) {
    this.free = sequences;
  }

  static async load(o: EngineOptions): Promise<Engine> {
    const threads = o.threads || defaultThreads();
    const started = Date.now();
    const llama = await getLlama({
      gpu: o.gpu,
      maxThreads: threads,
      logLevel: LlamaLogLevel.warn,
      logger: (level, message) => {
        const text = message.trim();
        if (!text) return;
        if (level === LlamaLogLevel.error || level === LlamaLogLevel.fatal) o.log.error({ llama: text }, "llama.cpp");
        else o.log.warn({ llama: text }, "llama.cpp");
      },
    });
    const model = await llama.loadModel({ modelPath: o.modelPath });
    const contextSize = Math.min(o.contextSize, model.trainContextSize);
    const context = await model.createContext({
      sequences: o.sequences,
      contextSize,
      threads,
      failedCreationRemedy: false,
    });
    const sequences = Array.from({ length: o.sequences }, () => context.getSequence());
    const name = o.modelName ?? model.fileInfo.metadata?.general?.name ?? basename(o.modelPath);
    o.log.info(
      { model: name, sequences: o.sequences, contextSize, threads, gpu: llama.gpu, loadMs: Date.now() - started },
      "model loaded",
    );
    return new Engine(llama, model, context, sequences, String(name));
  }

  get sequences(): number {
    return this.context.totalSequences;
  }

  /** Tokens each sequence holds. */
  get contextSize(): number {
    return this.context.contextSize;
  }

  countTokens(text: string): number {
    return this.model.tokenize(text).length;
  }

  private acquire(): Promise<LlamaContextSequence> {
    const s = this.free.pop();
    if (s) return Promise.resolve(s);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private release(s: LlamaContextSequence): void {
    const waiter = this.waiters.shift();
    if (waiter) waiter(s);
    else this.free.push(s);
  }

  async generate(req: GenerateRequest): Promise<GenerateResult> {
    const sequence = await this.acquire();
    const meterBefore = sequence.tokenMeter.getState();
    const session = new LlamaChatSession({
      contextSequence: sequence,
      autoDisposeSequence: false,
      ...(req.systemPrompt !== undefined ? { systemPrompt: req.systemPrompt } : {}),
    });
    try {
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
        ...(req.signal ? { signal: req.signal, stopOnAbortSignal: false } : {}),
        onToken: (tokens) => {
          generated += tokens.length;
          req.onTokens?.(generated);
        },
      });
      const used = sequence.tokenMeter.diff(meterBefore);
      return {
        text: res.responseText,
        stopReason: res.stopReason,
        promptTokens: used.usedInputTokens,
        completionTokens: used.usedOutputTokens,
      };
    } finally {
      session.dispose({ disposeSequence: false });
      await sequence.clearHistory();
      this.release(sequence);
    }
  }

  async close(): Promise<void> {
    for (const s of this.free) await s.dispose?.();
    await this.context.dispose();
    await this.model.dispose();
    await this.llama.dispose();
  }
}
