import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startStack, type TestStack } from "../helpers/stack.ts";

const ADMIN = "rate-limit-admin-key-0123456789abcdefgh";

let stack: TestStack;
beforeAll(async () => {
  // 0.5 request/s: the bucket does not refill measurably during the test.
  stack = await startStack({ worker: false, env: { DOCKET_API_KEY: ADMIN, DOCKET_RATE_LIMIT: "0.5", DOCKET_RATE_BURST: "3" } });
});
afterAll(() => stack?.stop());

const get = (path: string, key: string) => fetch(`${stack.producer.url}${path}`, { headers: { authorization: `Bearer ${key}` } });

describe("rate limit (DOCKET_RATE_LIMIT, DOCKET_RATE_BURST)", () => {
  it("a key past its burst gets 429 rate_limited with Retry-After; another key and health checks are unaffected", async () => {
    const created = await fetch(`${stack.producer.url}/v1/keys`, {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "limited" }),
    });
    const { key } = (await created.json()) as { key: string };
    // The admin spent one token creating the key; the new key has its own bucket of 3.
    for (let i = 0; i < 3; i++) expect((await get("/v1/jobs", key)).status).toBe(200);
    const limited = await get("/v1/jobs", key);
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(((await limited.json()) as any).error.code).toBe("rate_limited");

    expect((await get("/v1/jobs", ADMIN)).status).toBe(200);
    for (let i = 0; i < 5; i++) expect((await fetch(`${stack.producer.url}/healthz`)).status).toBe(200);
  });
});
