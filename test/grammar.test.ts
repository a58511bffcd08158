import { getLlama, type Llama, LlamaLogLevel } from "node-llama-cpp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { contentFree, GrammarRefusedError, jsonSchemaGrammar } from "../worker/grammar.ts";

const SECRET = "PLANTED-SECRET-g4r7";

describe("contentFree (the grammar copy llama.cpp may print)", () => {
  it("replaces each literal element by one x and keeps rules, classes, counts and operators", () => {
    expect(contentFree('root ::= "{" rule0 "\\"name\\"" [^"\\\\] ( "," val0 ){0,19}\nval0 ::= "\\"a\\\\\\"é😀\\""')).toBe(
      'root ::= "x" rule0 "xxxxxx" [^"\\\\] ( "x" val0 ){0,19}\nval0 ::= "xxxxxxx"',
    );
  });

  it("counts hex escapes as one element", () => {
    expect(contentFree('a ::= "\\x41\\u00e9\\U0001F600b"')).toBe('a ::= "xxxx"');
  });
});

describe("jsonSchemaGrammar", () => {
  let llama: Llama;
  beforeAll(async () => {
    llama = await getLlama({ gpu: false, maxThreads: 1, logLevel: LlamaLogLevel.error, logger: () => undefined });
  });
  afterAll(() => llama?.dispose());

  const schema = (minItems?: number) => ({
    type: "object",
    properties: { [`key-${SECRET}`]: { type: "array", minItems, maxItems: 20, items: { enum: [`enum-${SECRET}`, 'a"b\\c'] } } },
  });

  it("compiles the grammar createGrammarForJsonSchema compiles (node-llama-cpp's converter is found)", async () => {
    const ours = await jsonSchemaGrammar(llama, schema(1) as never);
    expect(ours.grammar).toBe((await llama.createGrammarForJsonSchema(schema(1) as never)).grammar);
    expect(ours.grammar).toContain(SECRET);
    expect(contentFree(ours.grammar)).not.toContain(SECRET);
  });

  it("a grammar llama.cpp refuses is a GrammarRefusedError that names the limits to lower", async () => {
    const refused = jsonSchemaGrammar(llama, { ...schema(), properties: { a: { type: "array", minItems: 100_000 } } } as never);
    await expect(refused).rejects.toBeInstanceOf(GrammarRefusedError);
    await expect(refused).rejects.toThrow(/minItems/);
  });
});
