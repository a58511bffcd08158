import { spawn } from "node:child_process";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";

const root = resolve(import.meta.dirname, "../..");

describe("npm run soak (a small N)", () => {
  it("jobs go through producer, nats-server and a worker restarted twice with none lost or duplicated", async () => {
    const child = spawn(process.execPath, ["--import", import.meta.resolve("tsx"), "tools/soak.ts", "--jobs", "60"], {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (c: Buffer) => {
      out += c.toString();
    });
    child.stderr.on("data", (c: Buffer) => {
      out += c.toString();
    });
    const code = await new Promise<number | null>((r) => child.once("exit", (c) => r(c)));
    expect(out).toMatch(/jobs submitted 60 \/ 60/);
    expect(out).toMatch(/lost 0\n/);
    expect(out).toMatch(/duplicates 0\n/);
    expect(out).toMatch(/worker restarts 2,/);
    expect(out).toMatch(/verdict: PASS/);
    expect(code, out).toBe(0);
  }, 150_000);
});
