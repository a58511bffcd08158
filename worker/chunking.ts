/**
 * Long documents: splitting by tokens with overlap, head-and-tail truncation, and the deterministic
 * merge of per-chunk JSON results. Pure: the tokenizer is passed in (the model's, in the worker).
 */

export interface TextTokenizer<T> {
  tokenize(text: string): readonly T[];
  detokenize(tokens: readonly T[]): string;
}

/** A document of more chunks than this is refused (document_too_long): map-reduce work stays bounded. */
export const MAX_CHUNKS = 256;

/** Tokens shared by two neighbouring chunks, so a sentence cut at a boundary is whole in one of them. */
export function defaultOverlap(chunkTokens: number): number {
  return Math.min(128, Math.floor(chunkTokens / 8));
}

/** Windows of at most `size` tokens, each starting `size - overlap` after the previous; the last ends at the end. */
export function splitTokens<T>(tokens: readonly T[], size: number, overlap: number): T[][] {
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`chunk size must be a positive integer, got ${size}`);
  if (!Number.isInteger(overlap) || overlap < 0 || overlap >= size) {
    throw new RangeError(`overlap must be an integer in [0, ${size}), got ${overlap}`);
  }
  if (tokens.length <= size) return [tokens.slice()];
  const step = size - overlap;
  const chunks: T[][] = [];
  for (let start = 0; ; start += step) {
    chunks.push(tokens.slice(start, start + size));
    if (start + size >= tokens.length) break;
  }
  return chunks;
}

/** How many chunks splitTokens makes, without making them. */
export function chunkCount(length: number, size: number, overlap: number): number {
  return length <= size ? 1 : Math.ceil((length - size) / (size - overlap)) + 1;
}

/** The first and last tokens of a sequence that does not fit: the head says what a document is, the tail how it ends. */
export function headAndTail<T>(tokens: readonly T[], keep: number): { head: T[]; tail: T[] } {
  if (tokens.length <= keep) return { head: tokens.slice(), tail: [] };
  const headLength = Math.ceil(keep / 2);
  return { head: tokens.slice(0, headLength), tail: tokens.slice(tokens.length - (keep - headLength)) };
}

export const OMISSION = "\n[…]\n";

export function truncateText<T>(text: string, tokenizer: TextTokenizer<T>, keep: number): { text: string; truncated: boolean } {
  const tokens = tokenizer.tokenize(text);
  if (tokens.length <= keep) return { text, truncated: false };
  const { head, tail } = headAndTail(tokens, keep);
  return { text: `${tokenizer.detokenize(head)}${OMISSION}${tokenizer.detokenize(tail)}`, truncated: true };
}

/**
 * Packs partial results into groups whose joined text fits `room` tokens, every group holding at least
 * two partials but perhaps the last (a partial is cut to half the room, so any two fit), so each
 * reduce round at least halves their number and the recursion ends.
 */
export function packPartials<T>(
  partials: readonly string[],
  tokenizer: TextTokenizer<T>,
  room: number,
  separatorTokens: number,
): string[][] {
  const half = Math.floor(room / 2) - separatorTokens;
  const sized = partials.map((p) => {
    const tokens = tokenizer.tokenize(p);
    return tokens.length + separatorTokens <= half
      ? { text: p, n: tokens.length + separatorTokens }
      : { text: tokenizer.detokenize(tokens.slice(0, Math.max(1, half))), n: half + separatorTokens };
  });
  const groups: string[][] = [];
  let current: string[] = [];
  let used = 0;
  for (const s of sized) {
    if (current.length > 0 && used + s.n > room) {
      groups.push(current);
      current = [];
      used = 0;
    }
    current.push(s.text);
    used += s.n;
  }
  if (current.length) groups.push(current);
  return groups;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Schema = Record<string, unknown>;

/**
 * Merges per-chunk extraction results under one JSON schema, deterministically and without another
 * model call: objects merge key by key, arrays concatenate with exact duplicates removed (cut to the
 * schema's maxItems), and a scalar keeps the first non-empty value (the earliest chunk that states it).
 * The result is valid under the schema whenever each part is.
 */
export function mergeExtractions(parts: readonly unknown[], schema: Schema): unknown {
  const present = parts.filter((p) => p !== undefined);
  if (present.length === 0) return undefined;
  const type = schema.type;
  if ((type === "object" || (type === undefined && isObject(present[0]))) && present.every(isObject)) {
    const properties = (schema.properties ?? {}) as Record<string, Schema>;
    const keys = [...new Set(present.flatMap((p) => Object.keys(p as object)))];
    const out: Record<string, unknown> = {};
    for (const key of keys) {
      out[key] = mergeExtractions(
        present.map((p) => (p as Record<string, unknown>)[key]),
        properties[key] ?? {},
      );
    }
    return out;
  }
  if ((type === "array" || type === undefined) && present.every(Array.isArray)) {
    const seen = new Set<string>();
    const items: Json[] = [];
    for (const item of (present as Json[][]).flat()) {
      const key = JSON.stringify(item);
      if (seen.has(key)) continue;
      seen.add(key);
      items.push(item);
    }
    const max = typeof schema.maxItems === "number" ? schema.maxItems : Number.POSITIVE_INFINITY;
    return items.slice(0, max);
  }
  return present.find((v) => v !== null && v !== "") ?? present[0];
}

function isObject(v: unknown): boolean {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
