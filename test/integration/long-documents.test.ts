import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { JobView } from "../../schema/api.ts";
import { startStack, type TestStack } from "../helpers/stack.ts";

/** A 512-token context, and documents several times longer. */
let stack: TestStack;
beforeAll(async () => {
  stack = await startStack({ env: { DOCKET_CONTEXT_SIZE: "512", DOCKET_MAX_BATCH: "2", DOCKET_MAX_TOKENS: "16" } });
});
afterAll(() => stack?.stop());

async function run(body: unknown): Promise<JobView> {
  const res = await fetch(`${stack.producer.url}/v1/jobs`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const { id } = (await res.json()) as { id: string };
  await stack.waitFor(id, ["succeeded", "failed"], 60_000);
  return (await (await fetch(`${stack.producer.url}/v1/jobs/${id}`)).json()) as JobView;
}

const longText = Array.from({ length: 60 }, (_, i) => `Clause ${i}: the tenant pays rent of ${100 + i} euros.`).join(" ");

describe("documents longer than the context", () => {
  it("are tokenized to several times the 512-token context", () => {
    expect(stack.worker!.engine.countTokens(longText)).toBeGreaterThan(3 * 512);
  });

  it("summarize with overflow chunk map-reduces: succeeds, reports chunks and usage summed over every call", async () => {
    const job = await run({ task: "summarize", input: { text: longText } });
    expect(job.state).toBe("succeeded");
    expect(job.result?.chunks).toBeGreaterThanOrEqual(4);
    // every chunk's prompt is counted: more prompt tokens than the document has
    expect(job.result!.usage.promptTokens).toBeGreaterThan(stack.worker!.engine.countTokens(longText));
    // map calls plus at least one reduce call, each producing at least a token
    expect(job.result!.usage.completionTokens).toBeGreaterThan(job.result!.chunks!);
  });

  it("ask and extract chunk too; extract merges the per-chunk JSON under the schema", async () => {
    const ask = await run({ task: "ask", input: { text: longText }, params: { question: "What is the rent?" } });
    expect(ask.state).toBe("succeeded");
    expect(ask.result?.chunks).toBeGreaterThanOrEqual(4);
    const schema = { type: "object", properties: { rent: { type: "string", maxLength: 4 } }, required: ["rent"] };
    const extract = await run({ task: "extract", input: { text: longText }, params: { schema, maxTokens: 24 } });
    expect(extract.state).toBe("succeeded");
    expect(extract.result?.json).toEqual({ rent: expect.any(String) });
    expect(JSON.parse(extract.result!.text)).toEqual(extract.result?.json);
  });

  it("overflow truncate runs once on the head and tail", async () => {
    const job = await run({ task: "summarize", input: { text: longText }, params: { overflow: "truncate" } });
    expect(job.state).toBe("succeeded");
    expect(job.result?.truncated).toBe(true);
    expect(job.result?.chunks).toBeUndefined();
    expect(job.result!.usage.promptTokens).toBeLessThanOrEqual(512);
  });

  it("classify on a long document decides on its head and tail", async () => {
    const job = await run({ task: "classify", input: { text: longText }, params: { labels: ["lease", "invoice"] } });
    expect(job.state).toBe("succeeded");
    expect(["lease", "invoice"]).toContain(job.result?.text);
    expect(job.result?.truncated).toBe(true);
  });

  it("overflow fail refuses with document_too_long", async () => {
    const job = await run({ task: "summarize", input: { text: longText }, params: { overflow: "fail" } });
    expect(job.state).toBe("failed");
    expect(job.error?.code).toBe("document_too_long");
    expect(job.error?.retryable).toBe(false);
  });
});
