/**
 * Generate a demo GGUF model.
 *
 *   npx tsx tools/model/cli.ts [--bench] [--out path] [--seed N]
 *
 * Without --out the model is cached in <repo>/.cache/models (reused if already present).
 */
import { stat } from "node:fs/promises";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { BENCH_MODEL, type DemoModelOptions, ensureDemoModel, TEST_MODEL, writeDemoModel } from "./demo-model.ts";

const { values } = parseArgs({
  options: {
    bench: { type: "boolean", default: false },
    out: { type: "string" },
    seed: { type: "string" },
    help: { type: "boolean", short: "h", default: false },
  },
});

if (values.help) {
  console.log("usage: npx tsx tools/model/cli.ts [--bench] [--out path] [--seed N]");
  process.exit(0);
}

const options: DemoModelOptions = { ...(values.bench ? BENCH_MODEL : TEST_MODEL) };
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
console.log(`${size} bytes (${(size / 1024 / 1024).toFixed(2)} MiB) in ${Math.round(performance.now() - started)} ms`);
