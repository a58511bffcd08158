import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { type BrowserContext, chromium, type Locator, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { WorkerHeartbeat } from "../../schema/heartbeat.ts";
import type { JobMessage } from "../../schema/job.ts";
import { CONTROL_BUCKET, JOBS_STREAM, subjects, workerKey } from "../../schema/subjects.ts";
import { startStack, type TestStack } from "../helpers/stack.ts";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const ARTIFACTS = join(import.meta.dirname, "..", "artifacts");
/** The server samples the history every second here (5 s by default), so a test sees it grow in seconds. */
const FAST_HISTORY = { DOCKET_DASHBOARD_SAMPLE_SECONDS: "1" };

let stack: TestStack;
let browser: BrowserContext;
let profile: string;
beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium not found at ${CHROMIUM}: install it (apt-get install -y chromium) or set CHROMIUM_PATH`);
  }
  stack = await startStack({ env: FAST_HISTORY });
  profile = await mkdtemp(join(tmpdir(), "docket-chromium-"));
  await mkdir(ARTIFACTS, { recursive: true });
  // A new empty profile (Playwright passes it as --user-data-dir).
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1400, height: 1000 },
    permissions: ["clipboard-read", "clipboard-write"],
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

/** A page that records its script errors. */
async function open(url: string): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(url);
  return { page, errors };
}

/** The history the charts draw: how many samples, and the time of the first. */
async function chartHistory(page: Page, chart = "chart-tokens"): Promise<{ points: number; from: number }> {
  const svg = page.getByTestId(chart);
  return { points: Number(await svg.getAttribute("data-points")), from: Number(await svg.getAttribute("data-from")) };
}

/** Text as the page shows it, CSS applied: a `text-transform` once showed ids upper-cased, and a copied id gave 404. */
// biome-ignore lint/performance/useDomNodeTextContent: the rendered text is the point
const rendered = (l: Locator) => l.innerText();

/** Cells holding an id whose text does not fit them (cut off, or hidden by an ellipsis). */
const clippedIds = (page: Page) =>
  page.evaluate(() =>
    [...document.querySelectorAll("td code.id, td a code.id")]
      .map((el) => el.closest("td") as HTMLElement)
      .filter((cell) => cell.scrollWidth > cell.clientWidth + 1)
      .map((cell) => cell.textContent),
  );

describe("dashboard", () => {
  it("follows a batch live; the history is the server's and survives a reload; a job opens in view with its exact id and file name", async () => {
    const { page, errors } = await open(`${stack.producer.url}/dashboard`);
    await expect(page.title()).resolves.toBe("docket dashboard");
    await page.locator("#status.live").waitFor({ timeout: 10_000 });
    await page.locator(`tr[data-worker="${stack.worker!.id}"]`).waitFor({ timeout: 10_000 });
    expect(await page.locator(`tr[data-worker="${stack.worker!.id}"]`).textContent()).toContain("docket-demo-tiny");

    // A folder of documents as the CLI sends it: one batch, each file's name its title and custom id.
    const files = ["Lease agreement 0 (signed copy).pdf", "NDA - Acme.docx", "rent-2024.txt", "scan 17.pdf", "b.md", "c.md"];
    const created = await fetch(`${stack.producer.url}/v1/batches`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        task: "summarize",
        params: { maxTokens: 12 },
        items: files.map((title, i) => ({ text: `Document ${i}: the tenant pays rent monthly.`, title, customId: `lease-${i}` })),
      }),
    });
    const batchId = ((await created.json()) as { id: string }).id;
    const listed = (await (await fetch(`${stack.producer.url}/v1/jobs?batchId=${batchId}`)).json()) as {
      data: { id: string; customId: string }[];
    };
    const ids = files.map((_, i) => listed.data.find((j) => j.customId === `lease-${i}`)!.id);
    const nc = await stack.nats.connect("batch-client");
    const js = jetstream(nc);
    // And one whose deadline passed before a worker could start it: a failure with a code.
    const late: JobMessage = {
      v: 1,
      id: "job_dash_late",
      lane: "default",
      task: "summarize",
      input: { text: "too late" },
      params: { maxTokens: 4 },
      submittedAt: new Date(Date.now() - 60_000).toISOString(),
      deadline: new Date(Date.now() - 30_000).toISOString(),
    };
    await js.publish(subjects.job("default", "summarize"), JSON.stringify(late), { msgID: late.id });

    const row = page.locator(`tr[data-batch="${batchId}"]`);
    // The jobs first (the server's record), then the page: a failure says which of the two lagged. CI once saw the
    // row short of 6/6 after 30 s with the suite's other files loading both cores.
    await stack.waitForBatch(batchId, ["completed"], 60_000);
    await page.locator(`tr[data-batch="${batchId}"][data-done="6"][data-total="6"]`).waitFor({ timeout: 15_000 });
    expect(await row.textContent()).toContain("6/6");
    expect(await row.locator(".bar .s-succeeded").count()).toBe(1);
    await stack.waitFor(late.id, ["failed"]);

    // Failures by code (recomputed every 5 s) and latency percentiles of the succeeded jobs.
    await page.locator('#failures tr[data-code="deadline_exceeded"]').waitFor({ timeout: 15_000 });
    const all = page.locator('#latency tr[data-lane="all"]');
    await all.waitFor();
    expect(Number(await all.locator("td").nth(1).textContent())).toBeGreaterThanOrEqual(6);
    await page.locator('#failures tr[data-code="deadline_exceeded"] a').click();
    await page.locator('#jobs tr[data-job="job_dash_late"][data-state="failed"]').waitFor();
    expect(await page.locator("#jobs tbody tr").count()).toBe(1);
    // Retry is offered only where the producer serves POST /v1/jobs/{id}/retry.
    const retryServed = Boolean(
      ((await (await fetch(`${stack.producer.url}/openapi.json`)).json()) as { paths: Record<string, unknown> }).paths[
        "/v1/jobs/{id}/retry"
      ],
    );
    expect(await page.locator('#jobs tr[data-job="job_dash_late"] button[data-action="retry"]').count()).toBe(
      retryServed ? 1 : 0,
    );
    await page.locator('#job-filter button[data-filter=""]').click();

    // Tokens/s and jobs in flight are the workers' own (their heartbeats), summed the same way in the header and the
    // workers' total row. A second worker's heartbeat, put by a test client, shows how.
    const kv = await new Kvm(nc).open(CONTROL_BUCKET);
    const now = new Date().toISOString();
    const fake: WorkerHeartbeat = {
      v: 1,
      id: "w-elsewhere",
      model: "qwen3-next-80b-a3b",
      batchSize: 8,
      sequences: 33,
      running: 32,
      tokensPerSecond: 412.5,
      prefix: { lookups: 10, hits: 4, tokensSaved: 9000 },
      startedAt: now,
      at: now,
    };
    await kv.put(workerKey(fake.id), JSON.stringify(fake));
    const fakeRow = page.locator('tr[data-worker="w-elsewhere"]');
    await fakeRow.waitFor({ timeout: 10_000 });
    expect(await fakeRow.textContent()).toContain("40% of 10");
    const own = Number(await page.locator(`tr[data-worker="${stack.worker!.id}"]`).getAttribute("data-running"));
    const inFlight = Number(await page.locator("#workers [data-total-in-flight]").getAttribute("data-total-in-flight"));
    expect(inFlight).toBe(32 + own);
    expect(Number(await page.locator("#totals [data-in-flight]").getAttribute("data-in-flight"))).toBe(inFlight);
    // The header and the next sample carry the heartbeats' tokens/s: the live figure, not one counted from finished jobs.
    await page.waitForFunction(() => Number(document.querySelector("#cap-tokens b")?.textContent?.replace(/,/g, "")) >= 412);
    await expect
      .poll(async () => {
        const s = (await (await fetch(`${stack.producer.url}/dashboard/snapshot`)).json()) as {
          history: { tokensPerSecond: number }[];
        };
        return Math.max(...s.history.map((p) => p.tokensPerSecond));
      })
      .toBeGreaterThanOrEqual(412.5);
    await kv.delete(workerKey(fake.id));

    // The history is sampled by the producer; a page draws it on a time axis (clock labels).
    await expect.poll(async () => (await chartHistory(page)).points, { timeout: 15_000 }).toBeGreaterThanOrEqual(5);
    const before = await chartHistory(page);
    expect(await page.locator("#chart-tokens text").allTextContents()).toContainEqual(expect.stringMatching(/^\d\d:\d\d/));
    expect(await page.locator("#chart-jobs polyline").count()).toBeGreaterThan(0);
    expect(await clippedIds(page)).toEqual([]);
    await page.screenshot({ path: join(ARTIFACTS, "dashboard.png"), fullPage: true });

    // A job opens at the top of the window, scrolled or not, with its file name and its id exactly as sent.
    await page.locator(`#jobs tr[data-job="${ids[0]}"]`).scrollIntoViewIfNeeded();
    await page.locator(`#jobs tr[data-job="${ids[0]}"] a`).first().click();
    const drawerId = page.getByTestId("drawer-id");
    await page.getByTestId("job-result").waitFor();
    expect(await rendered(drawerId)).toBe(ids[0]);
    expect(await rendered(page.getByTestId("drawer-title"))).toBe("Lease agreement 0 (signed copy).pdf");
    expect(await page.locator("#drawer").textContent()).toContain("lease-0");
    expect(await page.locator("#drawer").textContent()).toMatch(/started[\s\S]*completed/);
    const box = await page.locator("#drawer .top").boundingBox();
    expect(box!.y).toBeGreaterThanOrEqual(0);
    expect(box!.y + box!.height).toBeLessThan(1000);
    await page.locator("#drawer button[data-copy]").click();
    const copied = await page.evaluate(() => navigator.clipboard.readText());
    expect(copied).toBe(ids[0]);
    expect((await fetch(`${stack.producer.url}/v1/jobs/${copied}`)).status).toBe(200);
    await page.screenshot({ path: join(ARTIFACTS, "dashboard-job.png") });

    // A reload keeps the history (the server's) and the open job (the address says which).
    await page.reload();
    await page.locator("#status.live").waitFor({ timeout: 10_000 });
    await page.getByTestId("job-result").waitFor();
    expect(await rendered(drawerId)).toBe(ids[0]);
    await expect.poll(async () => (await chartHistory(page)).points).toBeGreaterThanOrEqual(before.points);
    expect((await chartHistory(page)).from).toBeLessThanOrEqual(before.from);

    // The batch opens to its jobs, with file names and custom ids, filtered by state.
    await page.locator("#drawer a[href^='#batch=']").click();
    await page.locator("#drawer #batch-filter").waitFor();
    expect(await rendered(drawerId)).toBe(batchId);
    expect(await page.locator("#drawer tbody tr[data-job]").count()).toBe(6);
    expect(await page.locator(`#drawer tr[data-job="${ids[3]}"]`).textContent()).toContain("scan 17.pdf");
    await page.locator('#batch-filter button[data-filter="failed"]').click();
    await page.locator("#drawer td.empty").waitFor();
    await page.locator('#batch-filter button[data-filter="succeeded"]').click();
    await expect.poll(() => page.locator("#drawer tbody tr[data-job]").count()).toBe(6);
    expect(await clippedIds(page)).toEqual([]);
    await page.screenshot({ path: join(ARTIFACTS, "dashboard-batch.png") });
    expect(errors).toEqual([]);
    await page.close();
  }, 120_000); // ~9 s alone; the batch wait allows for the whole suite loading both cores

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
      customId: '<script>window.pwned=2</script>"><img src=x onerror="window.pwned=3">',
      submittedAt: new Date().toISOString(),
    };
    await jetstream(nc).publish(subjects.job("batch", "summarize"), JSON.stringify(job), { msgID: job.id });
    await stack.waitFor(job.id, ["succeeded", "failed"]);
    const { page } = await open(`${stack.producer.url}/dashboard#job=${job.id}`);
    await page.locator(`#jobs tr[data-job="job_dash_hostile"]`).waitFor({ timeout: 10_000 });
    expect(await page.locator(`#jobs tr[data-job="job_dash_hostile"]`).textContent()).toContain("<img src=x");
    expect(await page.getByTestId("drawer-title").textContent()).toContain("<script>window.pwned=2</script>");
    await page.locator(`#batches a[data-id='${batchId}']`).click();
    await page.locator("#drawer #batch-filter").waitFor();
    expect(await rendered(page.getByTestId("drawer-id"))).toBe(batchId);
    expect(await page.evaluate(() => (window as unknown as { pwned?: number }).pwned)).toBeUndefined();
    await page.close();
  });

  it("with keys on: signs in, alerts that no worker is alive and that JetStream lost the queue, cancels from the page with the API's key, asks for it again after a reload; another site cannot use the sign-in", async () => {
    const ADMIN = "dashboard-admin-key-0123456789abcdefghij";
    const keyed = await startStack({ worker: false, env: { DOCKET_API_KEY: ADMIN, ...FAST_HISTORY } });
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
    const admin = { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" };
    const { page, errors } = await open(`${keyed.producer.url}/dashboard`);
    const attack = await browser.newPage();
    try {
      const files = ["Referral - J. Smith.docx", "Discharge letter 2024-03.pdf", "Scan 0042.tiff", "notes.txt"];
      const created = await fetch(`${keyed.producer.url}/v1/batches`, {
        method: "POST",
        headers: admin,
        body: JSON.stringify({
          task: "summarize",
          items: files.map((title, i) => ({ text: `Document ${i}.`, title, customId: `record-${i}` })),
        }),
      });
      expect(created.status).toBe(202);
      const batch = (await created.json()) as { id: string };
      const jobs = (await (await fetch(`${keyed.producer.url}/v1/jobs?batchId=${batch.id}`, { headers: admin })).json()) as {
        data: { id: string; customId: string }[];
      };
      const jobOf = (i: number) => jobs.data.find((j) => j.customId === `record-${i}`)!.id;
      // Emptied in place, as `nats stream purge` does: SQLite still says queued, and no worker will see them.
      await (await jetstreamManager(keyed.producer.nc)).streams.purge(JOBS_STREAM);
      const purgedAt = Date.now();

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
      expect(await page.locator('[data-alert="no_worker"]').textContent()).toContain("no worker is alive");

      // The batch opens to its jobs by file name; a job is cancelled from it with the key typed at sign-in.
      await page.locator(`#batches a[data-id="${batch.id}"]`).click();
      await page.locator(`#drawer tr[data-job="${jobOf(0)}"]`).waitFor();
      expect(await page.locator(`#drawer tr[data-job="${jobOf(0)}"]`).textContent()).toContain("Referral - J. Smith.docx");
      await page.locator(`#drawer tr[data-job="${jobOf(0)}"] button[data-action="cancel"]`).click();
      await page.locator(`#drawer tr[data-job="${jobOf(0)}"][data-state="cancelled"]`).waitFor({ timeout: 10_000 });
      expect(await page.locator("#actkey").isHidden()).toBe(true);
      await page.locator('#batch-filter button[data-filter="cancelled"]').click();
      await expect.poll(() => page.locator("#drawer tbody tr[data-job]").count()).toBe(1);
      await page.locator(`#drawer tr[data-job="${jobOf(0)}"]`).waitFor();
      await page.locator('#batch-filter button[data-filter="queued"]').click();
      await expect.poll(() => page.locator("#drawer tbody tr[data-job]").count()).toBe(3);

      // A reload keeps the sign-in (the cookie) but not the key: the next cancel asks for it.
      await page.reload();
      await page.locator("#status.live").waitFor({ timeout: 10_000 });
      await page.locator(`#drawer tr[data-job="${jobOf(1)}"] button[data-action="cancel"]`).click();
      await page.locator("#actkey").waitFor();
      await page.screenshot({ path: join(ARTIFACTS, "dashboard-key.png") });
      await page.fill("#actkey-input", ADMIN);
      await page.click('#actkey button[type="submit"]');
      await page.locator(`#drawer tr[data-job="${jobOf(1)}"][data-state="cancelled"]`).waitFor({ timeout: 10_000 });
      const one = (await (await fetch(`${keyed.producer.url}/v1/jobs/${jobOf(1)}`, { headers: admin })).json()) as {
        state: string;
      };
      expect(one.state).toBe("cancelled");

      // Two jobs are still queued in SQLite, none in JetStream: once that has lasted 15 s, the page says so.
      // (The page's snapshot may be a second older than the cancel the API just reported.)
      await page
        .locator('[data-alert="queue_not_in_nats"]', { hasText: "2 jobs queued in SQLite" })
        .waitFor({ timeout: Math.max(5_000, 25_000 - (Date.now() - purgedAt)) });
      await page.locator("#drawer .close").click();
      await page.screenshot({ path: join(ARTIFACTS, "dashboard-alerts.png"), fullPage: true });

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
  }, 120_000); // ~21 s alone, of which 15 s is the alert's own wait; under the whole suite's load it has taken 60 s
});
