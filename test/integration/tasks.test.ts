import { jetstream } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { JobView } from "../../schema/api.ts";
import { subjects } from "../../schema/subjects.ts";
import { PRESETS } from "../../worker/tasks/presets.ts";
import { startStack, type TestStack } from "../helpers/stack.ts";

/** The presets' schemas go into the prompt: a 4096-token context holds them with the tiny model's byte tokens. */
let stack: TestStack;
beforeAll(async () => {
  stack = await startStack({ env: { DOCKET_CONTEXT_SIZE: "4096", DOCKET_MAX_BATCH: "2", DOCKET_MAX_TOKENS: "24" } });
});
afterAll(() => stack?.stop());

async function post(body: unknown): Promise<{ status: number; body: Record<string, any> }> {
  const res = await fetch(`${stack.producer.url}/v1/jobs`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

async function finished(id: string): Promise<JobView> {
  await stack.waitFor(id, ["succeeded", "failed"], 60_000);
  return (await (await fetch(`${stack.producer.url}/v1/jobs/${id}`)).json()) as JobView;
}

const run = async (body: unknown) => finished((await post(body)).body.id);

describe("tasks", () => {
  it.each(Object.keys(PRESETS))("extract with preset %s returns JSON with the preset's top-level keys", async (preset) => {
    const job = await run({
      task: "extract",
      input: { text: "Acme Ltd leases the flat to Bob. Bob pays 900 euros monthly. Take 500 mg ibuprofen twice daily." },
      params: { preset, maxTokens: 2000, temperature: 0 },
    });
    expect(job.error).toBeNull();
    expect(job.state).toBe("succeeded");
    const json = JSON.parse(job.result!.text);
    expect(job.result?.json).toEqual(json);
    expect(Object.keys(json).sort()).toEqual(Object.keys(PRESETS[preset as keyof typeof PRESETS].properties).sort());
  });

  it("classify returns exactly one of the labels", async () => {
    const labels = ["lease", "invoice", "prescription"];
    const job = await run({ task: "classify", input: { text: "Rent is due monthly." }, params: { labels } });
    expect(job.state).toBe("succeeded");
    expect(labels).toContain(job.result?.text);
    expect(job.result?.json).toBe(job.result?.text);
  });

  it("chat answers an OpenAI-style conversation", async () => {
    const job = await run({
      task: "chat",
      params: {
        messages: [
          { role: "system", content: "Be brief." },
          { role: "user", content: "Hello" },
          { role: "assistant", content: "Hi." },
          { role: "user", content: "What is a lease?" },
        ],
      },
    });
    expect(job.state).toBe("succeeded");
    expect(typeof job.result?.text).toBe("string");
    expect(job.result!.usage.completionTokens).toBeGreaterThan(0);
  });

  it("an extract without schema or preset, or with a malformed schema, is refused with 400 naming params.schema", async () => {
    const missing = await post({ task: "extract", input: { text: "x" } });
    expect(missing.status).toBe(400);
    expect(missing.body.error).toMatchObject({ code: "validation_failed", field: "params.schema" });
    const malformed = await post({
      task: "extract",
      input: { text: "x" },
      params: { schema: { type: "object", properties: { a: { type: "text" } } } },
    });
    expect(malformed.status).toBe(400);
    expect(malformed.body.error).toMatchObject({ code: "validation_failed", field: "params.schema" });
    expect(malformed.body.error.message).toContain("properties.a.type");
    const unknownPreset = await post({ task: "extract", input: { text: "x" }, params: { preset: "tax" } });
    expect(unknownPreset.status).toBe(400);
  });

  it("a malformed schema published straight to NATS, past the producer, fails with invalid_params", async () => {
    const id = "tasks-invalid-schema";
    const job = {
      v: 1,
      id,
      lane: "default",
      task: "extract",
      input: { text: "Acme leases to Bob." },
      params: { schema: { type: "object", properties: { a: { type: "strng" } } } },
      submittedAt: new Date().toISOString(),
    };
    await jetstream(stack.worker!.nc).publish(subjects.job("default", "extract"), JSON.stringify(job), { msgID: id });
    const view = await finished(id);
    expect(view.state).toBe("failed");
    expect(view.error?.code).toBe("invalid_params");
    expect(view.error?.message).toContain("properties.a.type");
  });
});
