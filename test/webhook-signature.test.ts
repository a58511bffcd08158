import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { retryDelayMs } from "../producer/stores/outbox.ts";
import { generateSecret, parseSecret, signatureHeaders } from "../producer/webhooks/signature.ts";
import { loadConfig } from "../schema/config.ts";

describe("Standard Webhooks signatures", () => {
  it("a signed body verifies with the standardwebhooks library and fails once tampered", () => {
    const secret = generateSecret();
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    const body = JSON.stringify({ type: "job.succeeded", timestamp: new Date().toISOString(), data: { id: "job_x" } });
    const headers = signatureHeaders(secret, "msg_1", body);
    expect(headers["webhook-signature"]).toMatch(/^v1,/);
    expect(new Webhook(secret).verify(body, headers)).toMatchObject({ type: "job.succeeded" });
    expect(() => new Webhook(secret).verify(body.replace("job_x", "job_y"), headers)).toThrow();
    expect(() => new Webhook(generateSecret()).verify(body, headers)).toThrow();
  });

  it("a secret that is too short is refused", () => {
    expect(() => parseSecret("whsec_c2hvcnQ=")).toThrow(/24 to 64 bytes/);
  });
});

describe("webhook retry schedule", () => {
  it("the default schedule keeps trying for more than a day, never more than 1.25 h apart", () => {
    const c = loadConfig({});
    const s = { baseMs: c.DOCKET_WEBHOOK_RETRY_BASE_MS, maxMs: c.DOCKET_WEBHOOK_RETRY_MAX_MS };
    let leastTotal = 0;
    let mostGap = 0;
    for (let attempt = 1; attempt < c.DOCKET_WEBHOOK_MAX_ATTEMPTS; attempt++) {
      leastTotal += retryDelayMs(attempt, s, 0);
      mostGap = Math.max(mostGap, retryDelayMs(attempt, s, 1));
    }
    expect(leastTotal).toBeGreaterThan(24 * 3600_000);
    expect(mostGap).toBeLessThanOrEqual(1.25 * 3600_000);
    expect(retryDelayMs(1, s, 0)).toBe(60_000);
    expect(retryDelayMs(2, s, 0)).toBe(120_000);
  });
});
