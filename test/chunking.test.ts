import { describe, expect, it } from "vitest";
import { jsonSchemaIssue } from "../schema/json-schema.ts";
import { chunkCount, headAndTail, mergeExtractions, packPartials, splitTokens, truncateText } from "../worker/chunking.ts";
import { boundSchema } from "../worker/tasks/extract.ts";

/** One token per character: enough to test the arithmetic, which is the same for any tokenizer. */
const chars = { tokenize: (t: string) => [...t], detokenize: (t: readonly string[]) => t.join("") };
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

describe("splitting a document by tokens", () => {
  it("covers every token, in order, with the overlap shared by neighbours", () => {
    const tokens = range(1000);
    const chunks = splitTokens(tokens, 300, 50);
    expect(chunks.length).toBe(chunkCount(1000, 300, 50));
    expect(chunks.every((c) => c.length <= 300)).toBe(true);
    for (let i = 1; i < chunks.length; i++) expect(chunks[i]!.slice(0, 50)).toEqual(chunks[i - 1]!.slice(-50));
    expect(chunks.at(-1)!.at(-1)).toBe(999);
    const covered = new Set(chunks.flat());
    expect(covered.size).toBe(1000);
  });

  it("keeps a document that fits in one chunk, and refuses an overlap as large as the chunk", () => {
    expect(splitTokens(range(10), 10, 2)).toEqual([range(10)]);
    expect(chunkCount(10, 10, 2)).toBe(1);
    expect(() => splitTokens(range(10), 5, 5)).toThrow(RangeError);
  });

  it("truncation keeps the head and the tail and marks the cut", () => {
    expect(headAndTail(range(10), 5)).toEqual({ head: [0, 1, 2], tail: [8, 9] });
    const { text, truncated } = truncateText("abcdefghij", chars, 4);
    expect(truncated).toBe(true);
    expect(text).toBe("ab\n[…]\nij");
    expect(truncateText("abc", chars, 4)).toEqual({ text: "abc", truncated: false });
  });

  it("packs partial results so each reduce round at least halves them, cutting any partial too long to pair", () => {
    const partials = ["a".repeat(30), "b".repeat(30), "c".repeat(30), "d".repeat(200), "e".repeat(10)];
    const groups = packPartials(partials, chars, 100, 5);
    expect(groups.length).toBeLessThanOrEqual(Math.ceil(partials.length / 2));
    for (const g of groups) expect(g.reduce((n, p) => n + p.length + 5, 0)).toBeLessThanOrEqual(100);
    expect(groups.flat().find((p) => p.startsWith("d"))!.length).toBe(45);
  });
});

describe("merging per-chunk extractions", () => {
  const schema = {
    type: "object",
    properties: {
      title: { type: "string" },
      parties: { type: "array", items: { type: "string" }, maxItems: 3 },
      terms: { type: "object", properties: { rent: { type: "number" } } },
    },
  };

  it("merges objects by key, concatenates arrays without duplicates up to maxItems, keeps the first stated scalar", () => {
    const merged = mergeExtractions(
      [
        { title: "", parties: ["Acme", "Bob"], terms: { rent: null } },
        { title: "Lease", parties: ["Bob", "Carol", "Dan"], terms: { rent: 1200 } },
        { title: "Other", parties: [], terms: { rent: 900 } },
      ],
      schema,
    );
    expect(merged).toEqual({ title: "Lease", parties: ["Acme", "Bob", "Carol"], terms: { rent: 1200 } });
  });
});

describe("extraction schemas", () => {
  it("get maxLength and maxItems where they set none, so a grammar-bound result ends", () => {
    const bounded = boundSchema({
      type: "object",
      properties: { a: { type: "string" }, b: { type: "array", items: { type: "string", maxLength: 9 } }, c: { enum: ["x"] } },
      required: ["a"],
    }) as any;
    expect(bounded.properties.a.maxLength).toBeGreaterThan(0);
    expect(bounded.properties.b.maxItems).toBeGreaterThan(0);
    expect(bounded.properties.b.items.maxLength).toBe(9);
    expect(bounded.properties.c).toEqual({ enum: ["x"] });
    expect(bounded.required).toEqual(["a"]);
  });

  it("are checked structurally at the edge, naming where a schema is wrong", () => {
    expect(jsonSchemaIssue({ type: "object", properties: { a: { type: "string" } } })).toBeUndefined();
    expect(jsonSchemaIssue({ type: "object", properties: { a: { type: "strng" } } })?.at).toBe("properties.a.type");
    expect(jsonSchemaIssue({ type: "array", items: { enum: [] } })?.at).toBe("items.enum");
    expect(jsonSchemaIssue({ properties: [] })?.at).toBe("properties");
  });
});
