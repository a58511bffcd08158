import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { docxBomb, pdfWithPages } from "../fixtures/documents.ts";
import { startTestNats, type TestNats } from "../helpers/nats.ts";
import { type DocketProcess, spawnDocket } from "../helpers/processes.ts";

/**
 * Issue 11: hostile uploads. A 130 KB PDF of 10,000 empty pages once froze the producer for ~45 s, and a DOCX zip
 * bomb (400 MiB of XML in about a megabyte) was inflated on the event loop before any size check. With the default
 * limits, such files are refused with their codes while files within the limits are parsed on extraction threads,
 * and /healthz keeps answering within 100 ms. The producer runs as its own process, started as `npm start` starts
 * it (tsx's loader, so its extraction threads load TypeScript the production way); no worker: nothing needs one.
 */
let nats: TestNats;
let dir: string;
let producer: DocketProcess;
let url: string;
beforeAll(async () => {
  nats = await startTestNats();
  dir = await mkdtemp(join(tmpdir(), "docket-uploads-"));
  producer = spawnDocket("producer/main.ts", {
    NATS_URL: nats.url,
    DOCKET_DB: join(dir, "docket.db"),
    DOCKET_PORT: "0",
    DOCKET_LOG_LEVEL: "warn",
  });
  url = await producer.ready;
});
afterAll(async () => {
  await producer?.kill();
  await nats?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const MiB = 2 ** 20;

/** A one-file batch upload as multipart bytes, encoded before /healthz is polled (the client's work, not the producer's). */
async function encode(name: string, bytes: Uint8Array): Promise<{ name: string; body: ArrayBuffer; type: string }> {
  const form = new FormData();
  form.set("task", "summarize");
  form.append("files", new Blob([bytes as Uint8Array<ArrayBuffer>]), name);
  const req = new Request("http://encoder/", { method: "POST", body: form });
  return { name, body: await req.arrayBuffer(), type: req.headers.get("content-type") ?? "" };
}

async function post({ name, body, type }: { name: string; body: ArrayBuffer; type: string }) {
  const res = await fetch(`${url}/v1/batches`, { method: "POST", headers: { "content-type": type }, body });
  return { name, status: res.status, code: ((await res.json()) as { error?: { code: string } }).error?.code };
}

/**
 * Polls `url` every 20 ms from a process of its own, so what it times is the producer, not this test process (whose
 * heap the fixtures just filled: its garbage collection would pause a poller here). Records once the connection is
 * warm (after 5 polls); stop() returns the latencies, in ms.
 */
async function startPoller(url: string): Promise<{ stop(): Promise<number[]> }> {
  const script = `
    const latencies = [];
    let polling = true;
    process.on("message", () => { polling = false; });
    (async () => {
      for (let n = 0; polling; n++) {
        const started = performance.now();
        const res = await fetch(process.argv[1]);
        await res.arrayBuffer();
        if (res.status !== 200) throw new Error("/healthz answered " + res.status);
        if (n === 5) process.send("ready");
        if (n >= 5) latencies.push(performance.now() - started);
        await new Promise((r) => setTimeout(r, 20));
      }
      process.send(latencies, () => process.disconnect());
    })();`;
  const child = spawn(process.execPath, ["-e", script, url], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const next = () =>
    new Promise<unknown>((resolve, reject) => {
      child.once("message", resolve);
      child.once("exit", (code) => reject(new Error(`the poller exited (${code})`)));
    });
  await next();
  return {
    async stop() {
      const result = next();
      child.send("stop");
      return (await result) as number[];
    },
  };
}

describe("hostile uploads", () => {
  it("a 10,000-page PDF and six DOCX zip bombs are refused with their codes while /healthz answers within 100 ms", async () => {
    const pages = await pdfWithPages(10_000);
    const bomb = await docxBomb(400 * MiB);
    expect(pages.byteLength).toBeLessThan(150_000);
    expect(bomb.byteLength).toBeLessThan(1.5 * MiB);
    const uploads = [
      await encode("pages.pdf", pages),
      ...(await Promise.all(Array.from({ length: 6 }, (_, i) => encode(`bomb-${i}.docx`, bomb)))),
      // Within the limits, and seconds of parsing: real work for the threads while /healthz is polled.
      await encode("dense.docx", await docxBomb(3 * MiB)),
      await encode("long.pdf", await pdfWithPages(1_500, "The lease, page one.")),
    ];

    const poller = await startPoller(`${url}/healthz`);
    const answers = await Promise.all(uploads.map(post));
    const latencies = await poller.stop();

    expect(answers).toEqual([
      { name: "pages.pdf", status: 413, code: "too_many_pages" },
      ...Array.from({ length: 6 }, (_, i) => ({ name: `bomb-${i}.docx`, status: 413, code: "uncompressed_too_large" })),
      { name: "dense.docx", status: 202, code: undefined },
      { name: "long.pdf", status: 202, code: undefined },
    ]);
    const sorted = [...latencies].sort((a, b) => a - b);
    const p90 = sorted[Math.floor(sorted.length * 0.9)] ?? Infinity;
    const slowest = sorted.at(-1) ?? Infinity;
    const all = `${latencies.length} polls, p90 ${p90.toFixed(0)} ms, slowest ${slowest.toFixed(0)} ms: ${latencies.map((l) => l.toFixed(0)).join(" ")}`;
    console.info(`/healthz while the uploads were processed: ${all}`);
    expect(latencies.length).toBeGreaterThan(10);
    // Before the pool, the PDF alone held the event loop for ~45 s and each bomb for longer. On the shared 2-core
    // machine these tests run on, a poll now and then waits for a core (the producer's loop idle, its CPU profile
    // shows; idle polls there reach 90 ms too), so the 100 ms bound is on the 90th percentile, with a 1 s cap.
    expect(p90, all).toBeLessThan(100);
    expect(slowest, all).toBeLessThan(1_000);
  });
});
