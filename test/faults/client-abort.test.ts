import { EventEmitter, once } from "node:events";
import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startStack, type TestStack } from "../helpers/stack.ts";

/**
 * Issue 11: a client that drops its upload half-way is not a server error. Every aborted upload used to
 * be logged at error level ("unhandled error: aborted"), so any client could flood the logs with errors.
 */
interface LogLine {
  level: number;
  msg: string;
  path?: string;
  stack?: string;
  err?: unknown;
}
const lines: LogLine[] = [];
const logged = new EventEmitter();

let stack: TestStack;
beforeAll(async () => {
  stack = await startStack({
    worker: false,
    env: { DOCKET_LOG_LEVEL: "debug" },
    logTo: {
      write: (raw: string) => {
        const line = JSON.parse(raw) as LogLine;
        lines.push(line);
        logged.emit("line", line);
      },
    },
  });
});
afterAll(() => stack?.stop());

/** Sends part of a body, then drops the connection; resolves when the producer logs about `path`. */
async function abortUpload(path: string, headers: Record<string, string>): Promise<LogLine> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), 10_000);
  const seen = (async () => {
    for (;;) {
      const [line] = (await once(logged, "line", { signal: ac.signal })) as [LogLine];
      if (line.path === path.split("?")[0]) return line;
    }
  })();
  const req = request(`${stack.producer.url}${path}`, { method: "POST", agent: false, headers });
  req.on("error", () => undefined);
  req.write("x".repeat(4096));
  setTimeout(() => req.destroy(), 100);
  try {
    return await seen;
  } finally {
    clearTimeout(timer);
  }
}

describe("a client that aborts its upload", () => {
  it.each([
    ["/v1/jobs", { "content-type": "application/json", "content-length": "100000" }],
    ["/v1/batches?task=summarize", { "content-type": "application/x-ndjson" }],
    ["/v1/batches", { "content-type": "multipart/form-data; boundary=xyz", "content-length": "100000" }],
    ["/openai/v1/files", { "content-type": "multipart/form-data; boundary=xyz", "content-length": "100000" }],
  ])("on %s is logged below error level, without a stack, and nothing is written", async (path, headers) => {
    const jobs = () => (stack.producer.database.sqlite.prepare("select count(*) as n from jobs").get() as { n: number }).n;
    const before = jobs();
    const line = await abortUpload(path, headers);
    expect(line.level, JSON.stringify(line)).toBeLessThan(40);
    expect(line.msg).toMatch(/client went away/);
    expect(JSON.stringify(line)).not.toMatch(/stack|\n\s+at /);
    expect(lines.filter((l) => l.level >= 50)).toEqual([]);
    expect(jobs()).toBe(before);
  });
});
