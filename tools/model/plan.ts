/**
 * Prints the memory plan for a GGUF file and the configured budget:
 *   npm run plan -- ./models/model.gguf      (DOCKET_GPU_MEMORY_BYTES, DOCKET_MAX_BATCH, DOCKET_CONTEXT_SIZE apply)
 *   npm run plan -- --qwen3next              (a header-only Qwen3-Next-80B-A3B Q4_K_M, written to a temp file)
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../schema/config.ts";
import { describePlan, MemoryPlanError, planMemoryForModel } from "../../worker/planner.ts";
import { ensureDemoModel, TEST_MODEL } from "./demo-model.ts";
import { qwen3NextHeader } from "./qwen3next-header.ts";

const config = loadConfig();
const arg = process.argv[2];
const dir = await mkdtemp(join(tmpdir(), "docket-plan-"));
try {
  let path = arg ?? config.DOCKET_MODEL ?? (await ensureDemoModel(TEST_MODEL));
  if (arg === "--qwen3next") {
    path = join(dir, "qwen3next-q4_k_m.gguf");
    await qwen3NextHeader().writeHeader(path);
  }
  const plan = await planMemoryForModel(path, {
    budgetBytes: config.DOCKET_GPU_MEMORY_BYTES,
    maxSequences: config.DOCKET_MAX_BATCH,
    contextSize: config.DOCKET_CONTEXT_SIZE,
  });
  console.log(describePlan(plan));
} catch (err) {
  if (!(err instanceof MemoryPlanError)) throw err;
  console.error(`${err.code}: ${err.message}`);
  process.exitCode = 1;
} finally {
  await rm(dir, { recursive: true, force: true });
}
