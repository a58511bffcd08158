import { jetstreamManager } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JOBS_STREAM } from "../../schema/subjects.ts";
import { startStack, type TestStack } from "../helpers/stack.ts";

// No worker: every accepted job stays in DOCKET_JOBS, so the stream can be counted.
let stack: TestStack;
beforeAll(async () => {
  stack = await startStack({ worker: false });
});
afterAll(() => stack?.stop());

describe("a 10,000-item batch", () => {
  it("is accepted in one JSONL request: 10,000 rows, each published once to DOCKET_JOBS and marked published", async () => {
    const n = 10_000;
    const jsonl = Array.from({ length: n }, (_, i) => JSON.stringify({ text: `document ${i}`, customId: `d${i}` })).join("\n");
    const res = await fetch(`${stack.producer.url}/v1/batches?task=summarize`, {
      method: "POST",
      headers: { "content-type": "application/x-ndjson" },
      body: jsonl,
    });
    const body = (await res.json()) as { id: string; total: number; state: string; counts: { queued: number } };
    expect(res.status).toBe(202);
    expect(body).toMatchObject({ total: n, state: "in_progress", counts: { queued: n } });

    const sqlite = stack.producer.database.sqlite;
    const rows = sqlite
      .prepare("SELECT count(*) AS n, count(published_at) AS published, max(batch_index) AS last FROM jobs WHERE batch_id = ?")
      .get(body.id);
    expect(rows).toEqual({ n, published: n, last: n - 1 });
    const info = await (await jetstreamManager(stack.producer.nc)).streams.info(JOBS_STREAM);
    expect(info.state.messages).toBe(n);

    const results = (await (await fetch(`${stack.producer.url}/v1/batches/${body.id}/results`)).text()).trimEnd().split("\n");
    expect(results).toHaveLength(n);
    expect(JSON.parse(results[n - 1] ?? "{}")).toMatchObject({ index: n - 1, customId: `d${n - 1}`, state: "queued" });
  });
});
