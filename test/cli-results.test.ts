import { join, resolve, sep } from "node:path";
import { describe, expect, it } from "vitest";
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
