/**
 * Generate a demo GGUF model.
 *
 *   npx tsx tools/model/cli.ts [--bench | --hybrid] [--out path] [--seed N]
 *
 * --hybrid writes the tiny qwen3next (gated delta net + attention) model, HYBRID_TEST_MODEL.
 *
 * Without --out the model is cached in <repo>/.cache/models (reused if already present).
 */
import { stat } from "node:fs/promises";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { formatBytes } from "../../worker/planner.ts";
import {
  BENCH_MODEL,
  type DemoModelOptions,
  ensureDemoModel,
  HYBRID_TEST_MODEL,
  TEST_MODEL,
  writeDemoModel,
} from "./demo-model.ts";

const { values } = parseArgs({
  options: {
    bench: { type: "boolean", default: false },
    hybrid: { type: "boolean", default: false },
    out: { type: "string" },
    seed: { type: "string" },
    help: { type: "boolean", short: "h", default: false },
  },
});

if (values.help) {
  console.log("usage: npx tsx tools/model/cli.ts [--bench | --hybrid] [--out path] [--seed N]");
  process.exit(0);
}

if (values.bench && values.hybrid) {
  console.error("--bench and --hybrid are exclusive");
  process.exit(2);
}
const options: DemoModelOptions = { ...(values.bench ? BENCH_MODEL : values.hybrid ? HYBRID_TEST_MODEL : TEST_MODEL) };
if (values.seed !== undefined) options.seed = Number.parseInt(values.seed, 10);

const started = performance.now();
let path: string;
if (values.out) {
  path = resolve(values.out);
  await writeDemoModel(path, options);
} else {
  path = await ensureDemoModel(options);
}
const { size } = await stat(path);
console.log(path);
console.log(`${size} bytes (${formatBytes(size)}) in ${Math.round(performance.now() - started)} ms`);
