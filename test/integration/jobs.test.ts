import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { JobChange } from "../../producer/recorder.ts";
import type { JobView } from "../../schema/api.ts";
import { startStack, type TestStack } from "../helpers/stack.ts";

let stack: TestStack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(() => stack?.stop());

async function post(path: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${stack.producer.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

async function getJob(id: string): Promise<{ status: number; body: JobView & Record<string, any> }> {
  const res = await fetch(`${stack.producer.url}/v1/jobs/${id}`);
  return { status: res.status, body: (await res.json()) as JobView & Record<string, any> };
}

describe("POST /v1/jobs → worker → GET /v1/jobs/:id", () => {
  it("a summarize job goes queued → running → succeeded with text, usage, timings and model", async () => {
    // Listen before submitting: the worker may start the job before POST returns.
    const changes: JobChange[] = [];
    const listener = (c: JobChange) => changes.push(c);
    stack.producer.recorder.on("change", listener);
    const created = await post("/v1/jobs", { task: "summarize", input: { text: "The lessee shall pay rent monthly." } });
    expect(created.status).toBe(202);
    expect(created.body.state).toBe("queued");
    const id = created.body.id as string;

    await stack.waitFor(id, ["succeeded", "failed"]);
    const { status, body } = await getJob(id);
    expect(status).toBe(200);
    expect(body.state).toBe("succeeded");
    stack.producer.recorder.off("change", listener);
    expect(changes.filter((c) => c.jobId === id).map((c) => c.state)).toEqual(["running", "succeeded"]);
    expect(typeof body.result?.text).toBe("string");
    expect(body.result?.usage.promptTokens).toBeGreaterThan(10);
    expect(body.result?.usage.completionTokens).toBeGreaterThan(0);
    expect(body.result?.usage.completionTokens).toBeLessThanOrEqual(24);
    expect(body.result?.timings.runMs).toBeGreaterThan(0);
    expect(body.result?.model).toBe("docket-demo-tiny");
    expect(body.attempts).toBe(1);
    expect(body.startedAt && body.finishedAt).toBeTruthy();
  });

  it("params.ignoreEos makes every job generate exactly maxTokens (equal work for benchmarks)", async () => {
    const ids = await Promise.all(
      Array.from({ length: 4 }, async (_, i) => {
        const params = { maxTokens: 40, seed: i, temperature: 0, ignoreEos: true };
        const r = await post("/v1/jobs", { task: "summarize", input: { text: `Memo ${i}: rent is due.` }, params });
        return r.body.id as string;
      }),
    );
    await Promise.all(ids.map((id) => stack.waitFor(id, ["succeeded", "failed"])));
    const tokens = await Promise.all(ids.map(async (id) => (await getJob(id)).body.result?.usage.completionTokens));
    expect(tokens).toEqual([40, 40, 40, 40]);
  });

  it("several jobs run at once on the worker's sequences", async () => {
    const ids = await Promise.all(
      Array.from({ length: 6 }, async (_, i) => {
        const r = await post("/v1/jobs", { task: "ask", input: { text: `Document ${i}` }, params: { question: "Who?" } });
        return r.body.id as string;
      }),
    );
    const states = await Promise.all(ids.map((id) => stack.waitFor(id, ["succeeded", "failed"])));
    expect(states).toEqual(ids.map(() => "succeeded"));
  });

  it("an extract job returns JSON that matches its schema, decoded under a grammar", async () => {
    const schema = {
      type: "object",
      properties: { party: { type: "string", maxLength: 6 } },
      required: ["party"],
    };
    const created = await post("/v1/jobs", {
      task: "extract",
      input: { text: "Agreement between Acme and Bob." },
      params: { schema, maxTokens: 64 },
    });
    await stack.waitFor(created.body.id, ["succeeded", "failed"]);
    const { body } = await getJob(created.body.id);
    expect(body.state).toBe("succeeded");
    expect(body.result?.json).toEqual({ party: expect.any(String) });
  });

  it("a document longer than the context fails with document_too_long", async () => {
    const text = "lorem ipsum dolor sit amet ".repeat(400);
    const created = await post("/v1/jobs", { task: "summarize", input: { text }, params: { overflow: "fail" } });
    expect(created.status).toBe(202);
    await stack.waitFor(created.body.id, ["succeeded", "failed"]);
    const { body } = await getJob(created.body.id);
    expect(body.state).toBe("failed");
    expect(body.error?.code).toBe("document_too_long");
    expect(body.error?.message).toMatch(/tokens/);
    expect(body.attempts).toBe(1);
  });

  it("the same Idempotency-Key returns the same job, never a second one; with another body it is 422", async () => {
    const key = `key-${Date.now()}`;
    const a = await post("/v1/jobs", { task: "summarize", input: { text: "x" } }, { "idempotency-key": key });
    const b = await post("/v1/jobs", { task: "summarize", input: { text: "x" } }, { "idempotency-key": key });
    const c = await post("/v1/jobs", { task: "summarize", input: { text: "y" } }, { "idempotency-key": key });
    expect(a.status).toBe(202);
    expect(b.status).toBe(200);
    expect(b.body.id).toBe(a.body.id);
    expect(c.status).toBe(422);
    expect(c.body.error.code).toBe("idempotency_key_reused");
  });
});

describe("validation", () => {
  it("malformed JSON is 400 invalid_json", async () => {
    const r = await post("/v1/jobs", "{not json");
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe("invalid_json");
  });

  it("an unknown task is 400 validation_failed naming the field", async () => {
    const r = await post("/v1/jobs", { task: "translate", input: { text: "x" } });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ code: "validation_failed", field: "task" });
  });

  it("a missing document is 400 naming input.text", async () => {
    const r = await post("/v1/jobs", { task: "summarize" });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ code: "validation_failed", field: "input.text" });
  });

  it("classify without labels is 400 naming params.labels", async () => {
    const r = await post("/v1/jobs", { task: "classify", input: { text: "x" } });
    expect(r.body.error).toMatchObject({ code: "validation_failed", field: "params.labels" });
  });

  it("a wrong type is 400 naming the field", async () => {
    const r = await post("/v1/jobs", { task: "summarize", input: { text: "x" }, params: { maxTokens: "many" } });
    expect(r.status).toBe(400);
    expect(r.body.error.field).toBe("params.maxTokens");
  });

  it("an unknown job is 404 not_found", async () => {
    const r = await getJob("job_doesnotexist");
    expect(r.status).toBe(404);
    expect((r.body as any).error.code).toBe("not_found");
  });
});
