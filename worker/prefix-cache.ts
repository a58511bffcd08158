import { createHash } from "node:crypto";
import { mkdir, open, readdir, rename, rm, stat, unlink } from "node:fs/promises";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import type { EvaluationPriority, LlamaContextSequence, Token } from "node-llama-cpp";
import type { Logger } from "../runtime/log.ts";
import { SharedPrefixes } from "./prefix-share.ts";

/** Prefixes shorter than this are evaluated, never checkpointed: a file costs more than the tokens. */
export const MIN_PREFIX_TOKENS = 128;

/** Bytes read from each end of the model file for its fingerprint. */
const FINGERPRINT_BYTES = 1 << 20;

/** Prefixes this worker remembers having evaluated (not their state): a second sighting is saved. */
const SEEN_LIMIT = 10_000;

export interface PrefixCacheOptions {
  /** Where checkpoint files live; a tmpfs (e.g. /dev/shm) keeps them in RAM. */
  dir: string;
  /** Bytes of checkpoint files kept, least recently used evicted first; 0 keeps none (live sequences still reuse). */
  budgetBytes: number;
  /** The loaded model's identity: checkpoints of another model are never loaded (and are deleted at start). */
  modelPath: string;
  /** The context's batch size: a partly held prefix is cut back to a multiple of it (see prepare). */
  align: number;
  /** Off: the prefix is still evaluated first (same results), but never reused. */
  reuse: boolean;
  /** Runs an operation that takes the context's lock (erase, state save or load, checkpoint): the engine's LockGate. */
  locked?: <T>(op: () => Promise<T>) => Promise<T>;
  log: Logger;
}

/** How a job's document prefix was obtained. */
export type PrefixSource = "live" | "checkpoint" | "shared" | "evaluated";

export interface PrefixOutcome {
  source: PrefixSource;
  /** Prompt tokens whose evaluated state was reused instead of computed. */
  reusedTokens: number;
}

interface Entry {
  file: string;
  bytes: number;
  tokens: number;
}

interface Build {
  done: Promise<void>;
  /** Jobs waiting for this prefix: when any, the state is saved for them. */
  waiters: number;
}

export interface PrefixStats {
  checkpoints: number;
  checkpointBytes: number;
  /** Lookups since start, by where the prefix came from ("evaluated" is a miss). */
  lookups: Record<PrefixSource, number>;
  /** Prompt tokens not evaluated because their state was reused. */
  tokensSaved: number;
}

/**
 * Reuse of a document's evaluated prompt across jobs (issue 10). A task prompt starts with the part that
 * depends only on the document (worker/tasks/types.ts documentTask), so every task on one document shares
 * those tokens. Four tiers, cheapest first:
 * - live: a sequence still holds the prefix from its last job (Engine picks that sequence); the chat
 *   session keeps the common tokens and evaluates only the rest;
 * - checkpoint: the prefix's state was saved to a file (llama.cpp's per-sequence state: KV cells and, for
 *   hybrid/recurrent models, the recurrent state at exactly that position) and is loaded into the sequence;
 * - shared: another worker evaluated it and uploaded the state to the NATS object store (share());
 * - evaluated: a miss; the prefix is evaluated on its own, then saved when another job is waiting for it,
 *   the job hinted that more tasks follow (a named document), or the worker saw it before.
 * A prefix being evaluated on a worker is evaluated once there: its jobs that need it meanwhile wait and then
 * load the file.
 * Hybrid and recurrent models (Qwen3-Next) cannot drop a suffix of their state, so after a prefix is in
 * place the sequence also takes an in-memory checkpoint there; node-llama-cpp restores it when the chat
 * session erases the previous task's tokens.
 */
export class PrefixCache {
  /** Checkpoint files by prefix key, in least-recently-used order (Map keeps insertion order). */
  private readonly entries = new Map<string, Entry>();
  private readonly building = new Map<string, Build>();
  private readonly seen = new Set<string>();
  private bytes = 0;
  private sequenceDir?: Promise<string>;
  private shared?: Promise<SharedPrefixes>;

  constructor(private readonly o: PrefixCacheOptions) {}

  get reuse(): boolean {
    return this.o.reuse;
  }

  private locked<T>(op: () => Promise<T>): Promise<T> {
    return this.o.locked ? this.o.locked(op) : op();
  }

  /** Erases what `sequence` holds past its first `end` tokens. */
  private async trim(sequence: LlamaContextSequence, end: number): Promise<void> {
    if (sequence.nextTokenIndex > end)
      await this.locked(() => sequence.eraseContextTokenRanges([{ start: end, end: sequence.nextTokenIndex }]));
  }

  /** Checkpoints are kept (reuse on and a budget). */
  private get saves(): boolean {
    return this.o.reuse && this.o.budgetBytes > 0;
  }

  private readonly lookups: Record<PrefixSource, number> = { live: 0, checkpoint: 0, shared: 0, evaluated: 0 };
  private tokensSaved = 0;

  get stats(): PrefixStats {
    return {
      checkpoints: this.entries.size,
      checkpointBytes: this.bytes,
      lookups: { ...this.lookups },
      tokensSaved: this.tokensSaved,
    };
  }

  private counted(outcome: PrefixOutcome): PrefixOutcome {
    this.lookups[outcome.source]++;
    this.tokensSaved += outcome.reusedTokens;
    return outcome;
  }

  /**
   * Readies `sequence` for a prompt of `tokens` whose first `sharedLength` tokens depend only on the document.
   * The document prefix is always evaluated on its own, before the rest of the prompt, whether it is reused
   * or not: llama.cpp evaluates a prompt in chunks of the context's batch size and a token's arithmetic
   * depends on the chunk it is in, so one evaluation order for both makes a job's result byte-identical with
   * and without reuse. Afterwards the sequence holds exactly the prefix (live state, a checkpoint, or just
   * evaluated) and the chat session evaluates the rest. `keep` asks for a checkpoint even on a first sighting.
   * Undefined: the prompt has no document prefix worth it (the sequence is then empty).
   */
  async prepare(
    sequence: LlamaContextSequence,
    tokens: readonly Token[],
    sharedLength: number,
    o: { keep?: boolean; evaluationPriority: EvaluationPriority },
  ): Promise<PrefixOutcome | undefined> {
    // At least one prompt token is left for the session to evaluate: it needs logits to sample from.
    const end = Math.min(sharedLength, tokens.length - 1);
    if (end < MIN_PREFIX_TOKENS) {
      await this.trim(sequence, 0);
      return undefined;
    }
    const live = this.o.reuse ? sequence.compareContextTokens(tokens as Token[]).firstDifferentIndex : 0;
    if (live >= end) {
      await this.trim(sequence, end);
      return this.counted({ source: "live", reusedTokens: end });
    }
    const prefix = tokens.slice(0, end);
    const key = prefixKey(prefix);
    const pending = this.saves ? this.building.get(key) : undefined;
    if (pending) {
      pending.waiters++;
      await pending.done;
    }
    const entry = this.o.reuse ? this.entries.get(key) : undefined;
    if (entry && (await this.load(sequence, key, entry.file))) return this.counted({ source: "checkpoint", reusedTokens: end });
    // A partly held prefix is kept up to a chunk boundary, so the rest is chunked as in a whole evaluation.
    const reused = Math.floor(Math.min(live, end) / this.o.align) * this.o.align;
    const build: Build = { done: Promise.resolve(), waiters: 0 };
    const obtained = this.obtain(sequence, prefix, reused, key, build, o);
    build.done = obtained.then(() => undefined);
    if (this.saves) this.building.set(key, build);
    try {
      const source = await obtained;
      return this.counted({ source, reusedTokens: source === "shared" ? end : reused });
    } finally {
      if (this.building.get(key) === build) this.building.delete(key);
    }
  }

  /** Loads a saved state into `sequence`; false (file dropped, sequence emptied) when it cannot be loaded. */
  private async load(sequence: LlamaContextSequence, key: string, file: string): Promise<boolean> {
    try {
      await this.locked(() => sequence.loadStateFromFile(file, { acceptRisk: true }));
      const entry = this.entries.get(key);
      if (entry) this.touch(key, entry);
      // Hybrid and recurrent models: the point the next job's erase goes back to.
      await this.locked(() => sequence.takeCheckpoint());
      return true;
    } catch (err) {
      this.o.log.warn({ err: (err as Error).message }, "prefix checkpoint could not be loaded; evaluating the prefix");
      await this.drop(key);
      await this.locked(() => sequence.clearHistory());
      return false;
    }
  }

  /** A local miss: the prefix's state from another worker (shared checkpoints), or evaluated here. */
  private async obtain(
    sequence: LlamaContextSequence,
    prefix: readonly Token[],
    from: number,
    key: string,
    build: Build,
    o: { keep?: boolean; evaluationPriority: EvaluationPriority },
  ): Promise<PrefixSource> {
    const shared = this.saves && this.shared ? await this.shared : undefined;
    if (shared && (o.keep || this.seen.has(key))) {
      const file = await this.file(key);
      if (await shared.fetch(key, file)) {
        await this.insert(key, file, prefix.length);
        if (await this.load(sequence, key, file)) return "shared";
      }
    }
    const saved = await this.evaluate(sequence, prefix, from, key, build, o);
    // Uploaded in the background: this job goes on.
    if (saved && shared) void shared.publish(key, saved);
    return "evaluated";
  }

  /** Evaluates the prefix into `sequence` and saves it when it is worth keeping; returns the file when saved. */
  private async evaluate(
    sequence: LlamaContextSequence,
    prefix: readonly Token[],
    from: number,
    key: string,
    build: Build,
    o: { keep?: boolean; evaluationPriority: EvaluationPriority },
  ): Promise<string | undefined> {
    await this.trim(sequence, from);
    const rest = prefix.slice(from);
    if (rest.length > 0) await sequence.evaluateWithoutGeneratingNewTokens(rest, { evaluationPriority: o.evaluationPriority });
    await this.locked(() => sequence.takeCheckpoint());
    const save = this.saves && (o.keep || build.waiters > 0 || this.seen.has(key));
    this.remember(key);
    return save ? this.save(sequence, key, prefix.length) : undefined;
  }

  /** Saves the sequence's state (exactly the prefix) as the key's checkpoint; returns the file, or undefined on failure. */
  private async save(sequence: LlamaContextSequence, key: string, tokens: number): Promise<string | undefined> {
    try {
      const file = await this.file(key);
      const partial = `${file}.partial`;
      await this.locked(() => sequence.saveStateToFile(partial));
      await rename(partial, file);
      await this.insert(key, file, tokens);
      return file;
    } catch (err) {
      this.o.log.warn({ err: (err as Error).message }, "prefix checkpoint could not be saved");
      return undefined;
    }
  }

  private async file(key: string): Promise<string> {
    return join(await this.dir(), `${key}.state`);
  }

  /** Records a checkpoint file just written, then evicts past the budget. */
  private async insert(key: string, file: string, tokens: number): Promise<void> {
    const { size } = await stat(file);
    const old = this.entries.get(key);
    if (old) this.bytes -= old.bytes;
    this.entries.delete(key);
    this.entries.set(key, { file, bytes: size, tokens });
    this.bytes += size;
    await this.evict();
  }

  private touch(key: string, entry: Entry): void {
    this.entries.delete(key);
    this.entries.set(key, entry);
  }

  private remember(key: string): void {
    this.seen.delete(key);
    this.seen.add(key);
    if (this.seen.size > SEEN_LIMIT) this.seen.delete(this.seen.values().next().value as string);
  }

  private async evict(): Promise<void> {
    for (const key of this.entries.keys()) {
      if (this.bytes <= this.o.budgetBytes) break;
      await this.drop(key);
    }
  }

  private async drop(key: string): Promise<void> {
    const entry = this.entries.get(key);
    if (!entry) return;
    this.entries.delete(key);
    this.bytes -= entry.bytes;
    await unlink(entry.file).catch(() => undefined);
  }

  /**
   * This engine's checkpoint folder, `<dir>/<model fingerprint>-<pid>-<n>`. Created on first save; at the
   * same time folders of another model, and of processes no longer running, are deleted.
   */
  private dir(): Promise<string> {
    this.sequenceDir ??= (async () => {
      const fingerprint = await this.fingerprint();
      await mkdir(this.o.dir, { recursive: true });
      for (const name of await readdir(this.o.dir)) {
        const [fp, pid] = name.split("-");
        if (pid === String(process.pid)) continue;
        if (fp !== fingerprint || !alive(Number(pid))) await rm(join(this.o.dir, name), { recursive: true, force: true });
      }
      const dir = join(this.o.dir, `${fingerprint}-${process.pid}-${++instances}`);
      await mkdir(dir, { recursive: true });
      return dir;
    })();
    return this.sequenceDir;
  }

  private modelFingerprint?: Promise<string>;

  /** The model file's identity, the same on every host: its size and the hash of its first and last MiB. */
  fingerprint(): Promise<string> {
    this.modelFingerprint ??= (async () => {
      const file = await open(this.o.modelPath, "r");
      try {
        const { size } = await file.stat();
        const hash = createHash("sha256").update(String(size));
        for (const at of [0, Math.max(0, size - FINGERPRINT_BYTES)]) {
          const buffer = Buffer.alloc(Math.min(FINGERPRINT_BYTES, size));
          await file.read(buffer, 0, buffer.length, at);
          hash.update(buffer);
        }
        return hash.digest("hex").slice(0, 16);
      } finally {
        await file.close();
      }
    })();
    return this.modelFingerprint;
  }

  /** Shares checkpoints with the other workers through NATS (worker/prefix-share.ts). */
  share(nc: NatsConnection): void {
    if (!this.saves) return;
    this.shared = this.fingerprint().then((fp) => new SharedPrefixes(nc, fp, this.o.log));
  }

  /** Deletes this process's checkpoints (worker shutdown). */
  async close(): Promise<void> {
    if (!this.sequenceDir) return;
    const dir = await this.sequenceDir.catch(() => undefined);
    this.entries.clear();
    this.bytes = 0;
    if (dir) await rm(dir, { recursive: true, force: true });
  }
}

/** Engines of this process (tests run several): each has its own folder. */
let instances = 0;

/** A prefix's identity: the hash of its token ids. */
export function prefixKey(prefix: readonly Token[]): string {
  return createHash("sha256")
    .update(Uint32Array.from(prefix as readonly number[]))
    .digest("hex")
    .slice(0, 32);
}

/** Tokens `a` and `b` share from the start. */
export function commonPrefixLength(a: readonly Token[], b: readonly Token[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
