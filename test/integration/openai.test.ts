import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startStack, type TestStack } from "../helpers/stack.ts";

let stack: TestStack;
let client: OpenAI;
beforeAll(async () => {
  stack = await startStack();
  client = new OpenAI({ apiKey: "not-needed", baseURL: `${stack.producer.url}/openai/v1`, maxRetries: 0 });
});
afterAll(() => stack?.stop());

const messages = [
  { role: "system" as const, content: "You answer in one line." },
  { role: "user" as const, content: "What does the lease say about rent?" },
];

describe("OpenAI-compatible chat completions (official openai client)", () => {
  it("a chat completion is answered synchronously from a chat job on the interactive lane", async () => {
    const completion = await client.chat.completions.create({ model: "docket", messages, max_tokens: 12, seed: 1 });
    expect(completion.object).toBe("chat.completion");
    expect(completion.id).toMatch(/^chatcmpl-job_/);
    expect(completion.model).toBe("docket-demo-tiny");
    const [choice] = completion.choices;
    expect(choice?.message.role).toBe("assistant");
    expect(typeof choice?.message.content).toBe("string");
    expect(["stop", "length"]).toContain(choice?.finish_reason);
    expect(completion.usage?.completion_tokens).toBeGreaterThan(0);
    expect(completion.usage?.completion_tokens).toBeLessThanOrEqual(12);
    expect(completion.usage?.total_tokens).toBe(
      (completion.usage?.prompt_tokens ?? 0) + (completion.usage?.completion_tokens ?? 0),
    );

    const job = stack.producer.store.get(completion.id.replace("chatcmpl-", ""));
    expect(job).toMatchObject({ lane: "interactive", task: "chat", state: "succeeded" });
    expect(job?.params).toMatchObject({ maxTokens: 12, seed: 1, messages });
    expect(job?.result?.text).toBe(choice?.message.content);
  });

  it("stream: true yields chat.completion.chunk events whose deltas add up to the job's text, then ends", async () => {
    const stream = await client.chat.completions.create({
      model: "docket",
      messages,
      max_completion_tokens: 10,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let id = "";
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | null | undefined;
    let role: string | undefined;
    for await (const chunk of stream) {
      expect(chunk.object).toBe("chat.completion.chunk");
      id = chunk.id;
      const choice = chunk.choices[0];
      if (choice) {
        role ??= choice.delta.role;
        text += choice.delta.content ?? "";
        finish = choice.finish_reason ?? finish;
      }
      if (chunk.usage) usage = chunk.usage;
    }
    expect(role).toBe("assistant");
    expect(["stop", "length"]).toContain(finish);
    expect(usage?.completion_tokens).toBeGreaterThan(0);
    const job = stack.producer.store.get(id.replace("chatcmpl-", ""));
    expect(job?.state).toBe("succeeded");
    expect(text).toBe(job?.result?.text);
  });

  it("a long streamed answer arrives in pieces while it is generated, adding up to the job's text", async () => {
    const stream = await client.chat.completions.create({
      model: "docket",
      messages,
      max_completion_tokens: 1500,
      seed: 3,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let id = "";
    let contentChunks = 0;
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      id = chunk.id;
      const content = chunk.choices[0]?.delta.content;
      if (content) {
        contentChunks++;
        text += content;
      }
      if (chunk.usage) usage = chunk.usage;
    }
    const job = stack.producer.store.get(id.replace("chatcmpl-", ""));
    expect(text).toBe(job?.result?.text);
    // The random model rarely stops early; when it writes for a while, the answer must come in pieces.
    expect(usage?.completion_tokens).toBeGreaterThan(300);
    expect(contentChunks).toBeGreaterThanOrEqual(2);
  });

  it("a long system prompt asked a second question is served from the prompt cache: usage says how many tokens", async () => {
    const system = `You answer questions about this discharge letter.\n${"The patient was admitted with pneumonia and treated with amoxicillin 500 mg three times daily. ".repeat(8)}`;
    const ask = (content: string) =>
      client.chat.completions.create({
        model: "docket",
        messages: [
          { role: "system", content: system },
          { role: "user", content },
        ],
        max_tokens: 4,
      });
    const first = await ask("Which antibiotic?");
    const second = await ask("Why was the patient admitted?");
    expect(first.usage?.prompt_tokens_details?.cached_tokens).toBe(0);
    expect(second.usage?.prompt_tokens_details?.cached_tokens).toBeGreaterThan(500);
    expect(second.usage?.prompt_tokens_details?.cached_tokens).toBeLessThan(second.usage?.prompt_tokens ?? 0);
  });

  it("a conversation that does not end with a user message is a 400 the client raises", async () => {
    await expect(
      client.chat.completions.create({ model: "docket", messages: [{ role: "assistant", content: "Hi" }] }),
    ).rejects.toMatchObject({ status: 400 });
  });

  it("a 1.5 MB conversation (over NATS's max_payload) reaches the worker and is answered, not left to time out", async () => {
    // Its messages travel through the object store; the tiny model's context cannot hold them, which the
    // worker reports at once: the answer is that job's outcome, well before the chat timeout.
    const long = Array.from({ length: 150 }, (_, i) => ({
      role: i % 2 ? ("assistant" as const) : ("user" as const),
      content: "clause ".repeat(1_500),
    }));
    const started = Date.now();
    const err = await client.chat.completions
      .create({ model: "docket", messages: [...long, { role: "user", content: "Summarise." }], max_tokens: 4 })
      .then(
        () => undefined,
        (e: InstanceType<typeof OpenAI.APIError>) => e,
      );
    expect(err?.status).toBe(400);
    expect(err?.code).toBe("document_too_long");
    expect(Date.now() - started).toBeLessThan(30_000);
  }, 60_000);

  it("GET /models lists docket and the model the live worker serves", async () => {
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(["docket", "docket-demo-tiny"]);
    expect(models.data[1]?.created).toBeGreaterThan(0);
  });

  it("a chat completion naming the worker's model runs on it; one naming a model no live worker serves is 404 model_not_served", async () => {
    // Its GGUF's own spelling names it too: names are compared as the workers derive theirs.
    const completion = await client.chat.completions.create({ model: "Docket-Demo-Tiny", messages, max_tokens: 4 });
    expect(completion.model).toBe("docket-demo-tiny");
    const row = stack.producer.store.get(completion.id.replace(/^chatcmpl-/, ""));
    expect(row?.model).toBe("docket-demo-tiny");
    const err = await client.chat.completions.create({ model: "gpt-4o", messages }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    const body = (err as InstanceType<typeof OpenAI.NotFoundError>).error as { code: string; message: string };
    expect(body.code).toBe("model_not_served");
    expect(body.message).toContain("no worker serves model gpt-4o: use docket, docket-demo-tiny");
  });

  it("the producer serves /openapi.json and /docs beside the API", async () => {
    const doc = (await (await fetch(`${stack.producer.url}/openapi.json`)).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(doc.paths)).toContain("/openai/v1/chat/completions");
    const docs = await fetch(`${stack.producer.url}/docs`);
    expect(docs.status).toBe(200);
    expect(await docs.text()).toContain("/v1/jobs/{id}/webhooks");
  });
});
