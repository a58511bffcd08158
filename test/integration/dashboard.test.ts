import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream } from "@nats-io/jetstream";
import { type BrowserContext, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { JobMessage } from "../../schema/job.ts";
import { subjects } from "../../schema/subjects.ts";
import { startStack, type TestStack } from "../helpers/stack.ts";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const SCREENSHOT = join(import.meta.dirname, "..", "artifacts", "dashboard.png");

let stack: TestStack;
let browser: BrowserContext;
let profile: string;
beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium not found at ${CHROMIUM}: install it (apt-get install -y chromium) or set CHROMIUM_PATH`);
  }
  stack = await startStack();
  profile = await mkdtemp(join(tmpdir(), "docket-chromium-"));
  // A new empty profile (Playwright passes it as --user-data-dir).
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1400, height: 1000 },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
});
afterAll(async () => {
  await browser?.close();
  await stack?.stop();
  if (profile) await rm(profile, { recursive: true, force: true });
});

describe("dashboard", () => {
  it("shows a batch published by any NATS client moving to completed, live, with workers and job details", async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(`${stack.producer.url}/dashboard`);
    await expect(page.title()).resolves.toBe("docket dashboard");
    await page.locator("#status.live").waitFor({ timeout: 10_000 });
    await page.locator(`tr[data-worker="${stack.worker!.id}"]`).waitFor({ timeout: 10_000 });
    expect(await page.locator(`tr[data-worker="${stack.worker!.id}"]`).textContent()).toContain("docket-demo-tiny");

    const nc = await stack.nats.connect("batch-client");
    const js = jetstream(nc);
    const batchId = "batch_dashboard_demo";
    const ids = ["a", "b", "c", "d", "e", "f"].map((s) => `job_dash_${s}`);
    for (const [i, id] of ids.entries()) {
      const job: JobMessage = {
        v: 1,
        id,
        lane: "batch",
        task: "summarize",
        input: { text: `Document ${i}: the tenant pays rent monthly.` },
        params: { maxTokens: 12 },
        batchId,
        submittedAt: new Date().toISOString(),
      };
      await js.publish(subjects.job("batch", "summarize"), JSON.stringify(job), { msgID: id });
    }
    const row = page.locator(`tr[data-batch="${batchId}"]`);
    await row.waitFor({ timeout: 15_000 });
    await page.locator(`tr[data-batch="${batchId}"][data-done="6"][data-total="6"]`).waitFor({ timeout: 30_000 });
    expect(await row.textContent()).toContain("6/6");
    expect(await row.locator(".bar .s-succeeded").count()).toBe(1);

    await page.locator(`tr[data-job="${ids[0]}"] a`).click();
    const result = page.getByTestId("job-result");
    await result.waitFor();
    expect(await result.textContent()).toContain('"tokensPerSecond"');
    expect(await page.locator("#detail-body").textContent()).toMatch(/started[\s\S]*completed/);

    // Charts have drawn lines from the history the stream carries.
    await page.waitForFunction(() => document.querySelectorAll("#chart-throughput polyline").length === 2);
    await mkdir(join(import.meta.dirname, "..", "artifacts"), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  });

  it("renders text from job messages as text, not HTML", async () => {
    const nc = await stack.nats.connect("hostile-client");
    const batchId = '<img src=x onerror="window.pwned=1">';
    const job: JobMessage = {
      v: 1,
      id: "job_dash_hostile",
      lane: "batch",
      task: "summarize",
      input: { text: "x" },
      params: { maxTokens: 4 },
      batchId,
      submittedAt: new Date().toISOString(),
    };
    await jetstream(nc).publish(subjects.job("batch", "summarize"), JSON.stringify(job), { msgID: job.id });
    await stack.waitFor(job.id, ["succeeded", "failed"]);
    const page = await browser.newPage();
    await page.goto(`${stack.producer.url}/dashboard`);
    await page.locator(`tr[data-job="job_dash_hostile"]`).waitFor({ timeout: 10_000 });
    expect(await page.locator(`tr[data-job="job_dash_hostile"]`).textContent()).toContain("<img src=x");
    expect(await page.evaluate(() => (window as unknown as { pwned?: number }).pwned)).toBeUndefined();
    await page.close();
  });

  it("with keys on, the page signs in with the admin key and goes live; a page on another site cannot use that sign-in", async () => {
    const ADMIN = "dashboard-admin-key-0123456789abcdefghij";
    const keyed = await startStack({ worker: false, env: { DOCKET_API_KEY: ADMIN } });
    // A page on another site (localhost is another site than 127.0.0.1) that posts JSON to /v1/keys as a plain
    // form, the way the attack did.
    const evil = createServer((_req, res) => {
      res
        .writeHead(200, { "content-type": "text/html" })
        .end(
          `<form id="f" method="post" enctype="text/plain" action="${keyed.producer.url}/v1/keys">` +
            `<input name='{"name":"pwned","x":"' value='"}'></form><script>document.getElementById("f").submit()</script>`,
        );
    });
    await new Promise<void>((r) => evil.listen(0, "127.0.0.1", r));
    const page = await browser.newPage();
    const attack = await browser.newPage();
    try {
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(e.message));
      await page.goto(`${keyed.producer.url}/dashboard`);
      await page.locator("#login").waitFor();
      expect(await page.locator("#board").isHidden()).toBe(true);
      await page.fill("#key", "dk_wrong");
      await page.click("#login button");
      await page.locator("#login-error", { hasText: "not valid" }).waitFor();
      await page.fill("#key", ADMIN);
      await page.click("#login button");
      await page.locator("#status.live").waitFor({ timeout: 10_000 });
      expect(await page.locator("#login").isHidden()).toBe(true);
      const [session] = await browser.cookies(`${keyed.producer.url}/dashboard`);
      expect(session).toMatchObject({ name: "docket_session", httpOnly: true, sameSite: "Strict", path: "/dashboard" });

      const answer = attack.waitForResponse((r) => r.url() === `${keyed.producer.url}/v1/keys`);
      await attack.goto(`http://localhost:${(evil.address() as AddressInfo).port}/`);
      expect((await answer).status()).toBe(403);
      const keys = await fetch(`${keyed.producer.url}/v1/keys`, { headers: { authorization: `Bearer ${ADMIN}` } });
      expect(((await keys.json()) as { data: unknown[] }).data).toEqual([]);

      await page.click("#signout");
      await page.locator("#login").waitFor();
      expect(await browser.cookies(`${keyed.producer.url}/dashboard`)).toEqual([]);
      expect(errors).toEqual([]);
    } finally {
      // Pages first: an open event stream would keep the producer's server from closing.
      await Promise.all([page.close(), attack.close()]);
      evil.closeAllConnections();
      await new Promise((r) => evil.close(r));
      await keyed.stop();
    }
  });
});
