import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rawRequest } from "../helpers/http.ts";
import { startStack, type TestStack } from "../helpers/stack.ts";

/**
 * The requests a browser sends on behalf of a page on another site: form posts and no-cors fetches carrying
 * that site's Origin (text/plain, form-urlencoded or multipart bodies need no CORS preflight), and, after DNS
 * rebinding, requests whose Host names the attacker's domain.
 */
const EVIL = "http://evil.example";
const ADMIN = "test-admin-key-0123456789abcdefghijklmnop";
const JOB = JSON.stringify({ task: "summarize", input: { text: "A memo." }, params: { maxTokens: 4 } });
/** What `<form enctype="text/plain">` with input name='{"name":"pwned","x":"' value='"}' posts: valid JSON. */
const FORM_JSON = '{"name":"pwned","x":"="}';

let open: TestStack;
let keyed: TestStack;
beforeAll(async () => {
  [open, keyed] = await Promise.all([
    startStack({ worker: false, env: { DOCKET_PUBLIC_URL: "https://docket.example.com" } }),
    startStack({ worker: false, env: { DOCKET_API_KEY: ADMIN } }),
  ]);
});
afterAll(async () => {
  await Promise.all([open?.stop(), keyed?.stop()]);
});

const port = (s: TestStack) => new URL(s.producer.url).port;
const jobCount = (s: TestStack) => (s.producer.database.sqlite.prepare("select count(*) n from jobs").get() as { n: number }).n;

describe("auth off (the default): a page on another site", () => {
  it("cannot submit jobs: its form posts and no-cors fetches are refused by Origin before anything is read", async () => {
    const before = jobCount(open);
    for (const [path, type, body] of [
      ["/v1/jobs", "text/plain;charset=UTF-8", JOB],
      ["/v1/jobs", "application/x-www-form-urlencoded", "task=summarize"],
      ["/v1/batches", "multipart/form-data; boundary=x", "--x--"],
      ["/openai/v1/chat/completions", "text/plain", '{"model":"m","messages":[{"role":"user","content":"hi"}]}'],
      ["/v1/jobs", "application/json", JOB],
    ] as const) {
      const r = await rawRequest(`${open.producer.url}${path}`, {
        method: "POST",
        headers: { origin: EVIL, "content-type": type },
        body,
      });
      expect(r.status, `${path} ${type}`).toBe(403);
      expect(r.json.error.code).toBe("origin_not_allowed");
    }
    const sandboxed = await rawRequest(`${open.producer.url}/v1/jobs`, {
      method: "POST",
      headers: { origin: "null", "content-type": "application/json" },
      body: JOB,
    });
    expect(sandboxed.json.error.code).toBe("origin_not_allowed");
    expect(jobCount(open)).toBe(before);
  });

  it("JSON routes read only JSON: text/plain is 415 unsupported_media_type; curl, the CLI and SDKs (no Origin) and the server's own pages still work", async () => {
    const plain = await rawRequest(`${open.producer.url}/v1/jobs`, {
      method: "POST",
      headers: { "content-type": "text/plain" },
      body: JOB,
    });
    expect(plain.status).toBe(415);
    expect(plain.json.error.code).toBe("unsupported_media_type");
    const none = await rawRequest(`${open.producer.url}/v1/jobs`, { method: "POST", body: JOB });
    expect(none.json.error.code).toBe("unsupported_media_type");

    const curl = await rawRequest(`${open.producer.url}/v1/jobs`, {
      method: "POST",
      headers: { "content-type": "application/json; charset=utf-8" },
      body: JOB,
    });
    expect(curl.status).toBe(202);
    for (const origin of [`http://127.0.0.1:${port(open)}`, "https://docket.example.com"]) {
      const own = await rawRequest(`${open.producer.url}/v1/jobs`, {
        method: "POST",
        headers: { origin, "content-type": "application/json" },
        body: JOB,
      });
      expect(own.status, origin).toBe(202);
    }
  });

  it("rebound by DNS (Host: its own name) cannot list jobs nor submit them; loopback names, IPs and DOCKET_PUBLIC_URL's host can", async () => {
    const listed = await rawRequest(`${open.producer.url}/v1/jobs`, { headers: { host: `evil.example:${port(open)}` } });
    expect(listed.status).toBe(403);
    expect(listed.json.error.code).toBe("host_not_allowed");
    expect(listed.text).not.toContain("job_");
    // After rebinding the page's origin is the server's as far as Origin and Host can tell: Host is what refuses it.
    const posted = await rawRequest(`${open.producer.url}/v1/jobs`, {
      method: "POST",
      headers: {
        host: `evil.example:${port(open)}`,
        origin: `http://evil.example:${port(open)}`,
        "content-type": "application/json",
      },
      body: JOB,
    });
    expect(posted.json.error.code).toBe("host_not_allowed");

    for (const host of [`localhost:${port(open)}`, `127.0.0.1:${port(open)}`, `[::1]:${port(open)}`, "docket.example.com"])
      expect((await rawRequest(`${open.producer.url}/v1/jobs`, { headers: { host } })).status, host).toBe(200);
    // Probes send whatever name they reached the server by.
    expect((await rawRequest(`${open.producer.url}/healthz`, { headers: { host: "evil.example" } })).status).toBe(200);
  });
});

describe("keys on: a browser signed in to the dashboard", () => {
  it("holds a SameSite=Strict, HttpOnly cookie for /dashboard only; a cross-site form post to /v1/keys with it creates no key", async () => {
    const url = keyed.producer.url;
    const self = `http://127.0.0.1:${port(keyed)}`;
    // What the old dashboard made a browser keep for this origin and attach to every request, a forged one too.
    const basic = `Basic ${Buffer.from(`admin:${ADMIN}`).toString("base64")}`;
    const forgedBasic = await rawRequest(`${url}/v1/keys`, {
      method: "POST",
      headers: { origin: EVIL, "content-type": "text/plain", authorization: basic },
      body: FORM_JSON,
    });
    expect(forgedBasic.status).toBe(403);

    const signIn = await rawRequest(`${url}/dashboard/session`, {
      method: "POST",
      headers: { origin: self, "content-type": "application/json" },
      body: JSON.stringify({ key: ADMIN }),
    });
    expect(signIn.status).toBe(204);
    const setCookie = String(signIn.headers["set-cookie"]);
    expect(setCookie).toMatch(/^docket_session=[^;]+;/);
    expect(setCookie).toMatch(/; HttpOnly/i);
    expect(setCookie).toMatch(/; SameSite=Strict/i);
    expect(setCookie).toMatch(/; Path=\/dashboard(;|$)/);
    const cookie = setCookie.split(";")[0] ?? "";
    expect((await rawRequest(`${url}/dashboard/snapshot`, { headers: { cookie } })).status).toBe(200);

    // Everything the browser could attach: the cookie (were it sent cross-site) and Basic credentials.
    const forged = await rawRequest(`${url}/v1/keys`, {
      method: "POST",
      headers: { origin: EVIL, "content-type": "text/plain", cookie, authorization: basic },
      body: FORM_JSON,
    });
    expect(forged.status).toBe(403);
    expect(forged.json.error.code).toBe("origin_not_allowed");
    // Without an Origin too (an old browser): neither the cookie nor Basic authorizes a /v1 route.
    const noOrigin = await rawRequest(`${url}/v1/keys`, {
      method: "POST",
      headers: { "content-type": "application/json", cookie, authorization: basic },
      body: FORM_JSON,
    });
    expect(noOrigin.status).toBe(401);
    const keys = await rawRequest(`${url}/v1/keys`, { headers: { authorization: `Bearer ${ADMIN}` } });
    expect(keys.json.data).toEqual([]);

    const elsewhere = await rawRequest(`${url}/dashboard/session`, {
      method: "POST",
      headers: { origin: EVIL, "content-type": "application/json" },
      body: JSON.stringify({ key: ADMIN }),
    });
    expect(elsewhere.json.error.code).toBe("origin_not_allowed");
    expect(elsewhere.headers["set-cookie"]).toBeUndefined();
  });

  it("signs out: the cookie is cleared, and a forged or stale cookie is refused", async () => {
    const url = keyed.producer.url;
    const out = await rawRequest(`${url}/dashboard/session`, { method: "DELETE" });
    expect(out.status).toBe(204);
    expect(String(out.headers["set-cookie"])).toMatch(/^docket_session=;.*Max-Age=0/i);
    for (const cookie of ["docket_session=9999999999999.AAAA", `docket_session=${Date.now() - 1}.x`, "docket_session="]) {
      const r = await rawRequest(`${url}/dashboard/snapshot`, { headers: { cookie } });
      expect(r.status, cookie).toBe(401);
    }
  });
});
