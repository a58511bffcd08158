import { describe, expect, it } from "vitest";
import { parseBatchInput } from "../producer/openai-batch-input.ts";

const ctx = {
  options: { task: "chat" as const, lane: "batch" as const, params: {} },
  batchId: "batch_test",
  submittedAt: "2026-01-01T00:00:00.000Z",
  maxDocument: 1024 * 1024,
};
const line = (customId: string, body: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ custom_id: customId, method: "POST", url: "/v1/chat/completions", body, ...extra });
const body = (content: string, more: Record<string, unknown> = {}) => ({
  model: "gpt-4o-mini",
  messages: [
    { role: "developer", content: "Be brief." },
    { role: "user", content },
  ],
  ...more,
});
const parse = (lines: string[], max = 100) => parseBatchInput(ctx, Buffer.from(lines.join("\n")), max);

describe("OpenAI batch input files", () => {
  it("turns each request line into a chat job on the batch lane with its custom_id, messages and token budget", async () => {
    const r = await parse([
      line("a", body("One?", { max_tokens: 50, temperature: 0.3, seed: 4 })),
      "",
      line("b", body("Two?", { max_completion_tokens: 9 })),
    ]);
    expect(r.errors).toEqual([]);
    expect(r.rejected).toEqual([]);
    expect(r.model).toBe("gpt-4o-mini");
    expect(r.jobs.map((j) => [j.customId, j.lane, j.task, j.batchId])).toEqual([
      ["a", "batch", "chat", "batch_test"],
      ["b", "batch", "chat", "batch_test"],
    ]);
    expect(r.jobs[0]?.params).toEqual({
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "One?" },
      ],
      maxTokens: 50,
      temperature: 0.3,
      seed: 4,
    });
    expect(r.jobs[1]?.params.maxTokens).toBe(9);
  });

  it("a line whose body is not a valid chat request is refused on its own, with its line number and reason", async () => {
    const r = await parse([
      line("ok", body("Fine")),
      line("empty", { model: "m", messages: [] }),
      line("stream", body("x", { stream: true })),
      line("assistant-last", { model: "m", messages: [{ role: "assistant", content: "hi" }] }),
    ]);
    expect(r.errors).toEqual([]);
    expect(r.jobs.map((j) => j.customId)).toEqual(["ok"]);
    expect(r.rejected.map((x) => [x.customId, x.line])).toEqual([
      ["empty", 2],
      ["stream", 3],
      ["assistant-last", 4],
    ]);
    expect(r.rejected[0]?.message).toMatch(/^body\.messages/);
    expect(r.rejected[1]?.message).toMatch(/stream/);
  });

  it("malformed lines are file errors with line numbers: bad JSON, wrong url or method, duplicate custom_id", async () => {
    const r = await parse([
      line("a", body("x")),
      "{oops",
      line("b", body("x"), { url: "/v1/embeddings" }),
      line("c", body("x"), { method: "GET" }),
      line("a", body("again")),
      JSON.stringify({ method: "POST", url: "/v1/chat/completions", body: body("x") }),
    ]);
    expect(r.errors.map((e) => [e.code, e.line])).toEqual([
      ["invalid_json_line", 2],
      ["invalid_request", 3],
      ["invalid_request", 4],
      ["duplicate_custom_id", 5],
      ["invalid_request", 6],
    ]);
    expect(r.errors[1]?.param).toBe("url");
  });

  it("an empty file, a file that is not UTF-8 and one over the item limit are refused", async () => {
    expect((await parse(["", "  "])).errors[0]?.code).toBe("empty_file");
    expect((await parseBatchInput(ctx, Buffer.from([0xff, 0xfe, 0x00]), 10)).errors[0]?.code).toBe("invalid_file");
    const many = await parse([line("1", body("x")), line("2", body("x")), line("3", body("x"))], 2);
    expect(many.errors.map((e) => e.code)).toEqual(["too_many_requests"]);
  });
});
