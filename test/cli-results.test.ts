import { join, resolve, sep } from "node:path";
import { describe, expect, it } from "vitest";
import type { BatchView } from "../schema/batch.ts";
import { describeBatch, duration } from "../tools/cli/api.ts";
import { resultPath } from "../tools/cli/batch.ts";

describe("docket results --dir file names", () => {
  const dir = resolve("out");
  it("names each result file by its customId, keeping folders", () => {
    expect(resultPath("out", "lease.txt")).toBe(join(dir, "lease.txt.json"));
    expect(resultPath("out", "sub/memo.md")).toBe(join(dir, "sub", "memo.md.json"));
  });

  it("never writes outside the folder, whatever the customId", () => {
    for (const id of ["../../etc/passwd", "/etc/passwd", "a/../../b", "..", "", "C:\\x"]) {
      expect(resultPath("out", id).startsWith(dir + sep), id).toBe(true);
    }
  });
});

describe("docket status and watch: the queue estimate", () => {
  const now = Date.parse("2026-01-01T10:00:00Z");
  const batch = {
    id: "batch_1",
    state: "in_progress",
    progress: { done: 3, total: 10 },
    counts: { succeeded: 2, failed: 1, cancelled: 0, running: 2, queued: 5 },
  } as unknown as BatchView;

  it("adds the place in line and when the last queued job should finish, once the producer has a time", () => {
    const finish = new Date(now + 200_000);
    const queue = {
      position: 4,
      keyPosition: 4,
      ahead: { jobs: 3, tokens: 900 },
      estimatedStartAt: null,
      estimatedFinishAt: null,
      tokensPerSecond: null,
    };
    expect(describeBatch({ ...batch, queue }, now)).toBe(
      "batch_1 in_progress 3/10 done (succeeded 2, failed 1, cancelled 0, running 2, queued 5); next in line #4",
    );
    const timed = { ...queue, estimatedFinishAt: finish.toISOString(), tokensPerSecond: 50 };
    expect(describeBatch({ ...batch, queue: timed }, now)).toMatch(
      new RegExp(`; next in line #4, finishes ~${finish.toTimeString().slice(0, 8)} \\(in 3m 20s\\)$`),
    );
    expect(describeBatch({ ...batch, queue: null }, now)).not.toContain("next in line");
    // A lane shared between keys: the batch's next job is its key's second, fourth in the whole line.
    expect(describeBatch({ ...batch, queue: { ...queue, keyPosition: 2 } }, now)).toContain("next in line #4 (#2 of its key's)");
  });

  it("writes durations as seconds, minutes or hours", () => {
    expect([duration(42_000), duration(200_000), duration(7_500_000), duration(-5)]).toEqual(["42s", "3m 20s", "2h 05m", "0s"]);
  });
});
