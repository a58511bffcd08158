/**
 * What `npm start` checks before it starts anything: which model file the workers will run (a folder yields its
 * one file of DOCKET_QUANTIZATION; an hf: URI is downloaded once here, not by each worker), and that each of
 * DOCKET_WORKERS workers can hold it in its share of DOCKET_GPU_MEMORY_BYTES (the worker's own planner).
 */
import { createLogger } from "../runtime/log.ts";
import type { Config } from "../schema/config.ts";
import { resolveModel } from "../worker/model.ts";
import { type MemoryPlan, MemoryPlanError, planMemoryForModel, planSettings, workerBudget } from "../worker/planner.ts";
import { ensureDemoModel, TEST_MODEL } from "./model/demo-model.ts";

export class PreflightError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface Preflight {
  modelPath: string;
  /** The generated demo model (DOCKET_MODEL unset). */
  demo: boolean;
  /** One worker's plan. */
  plan: MemoryPlan;
}

/** `name (file key)` when the setting came from the config file. */
const setting = (name: string, key: string, file: string | undefined) => (file ? `${name} (${key})` : name);

export async function preflight(config: Config, file?: string): Promise<Preflight> {
  const demo = !config.DOCKET_MODEL;
  let modelPath: string;
  try {
    ({ path: modelPath } = await resolveModel({
      model: config.DOCKET_MODEL ?? (await ensureDemoModel(TEST_MODEL)),
      quantization: config.DOCKET_QUANTIZATION,
      directory: config.DOCKET_MODELS_DIR,
      log: createLogger("launcher", "silent"),
    }));
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    throw new PreflightError(typeof code === "string" ? code : "model_not_found", (err as Error).message);
  }
  try {
    const plan = await planMemoryForModel(modelPath, { ...workerBudget(config), ...planSettings(config) });
    return { modelPath, demo, plan };
  } catch (err) {
    if (!(err instanceof MemoryPlanError)) throw err;
    if (config.DOCKET_WORKERS === 1) throw new PreflightError(err.code, err.message);
    const workers = config.DOCKET_WORKERS;
    throw new PreflightError(
      err.code,
      `${setting("DOCKET_WORKERS", "service.workers", file)}=${workers} workers would share ` +
        `${setting("DOCKET_GPU_MEMORY_BYTES", "model.gpu_memory", file)}=${(config.DOCKET_GPU_MEMORY_BYTES / 1e9).toFixed(2)} GB, ` +
        `${(config.DOCKET_GPU_MEMORY_BYTES / workers / 1e9).toFixed(2)} GB each, and each loads the whole model: ${err.message}. ` +
        `One worker batches up to ${setting("DOCKET_MAX_BATCH", "service.max_batch_size", file)}=${config.DOCKET_MAX_BATCH} jobs ` +
        "by itself: run 1 worker per GPU, and more workers on more hosts (docs/scaling.md)",
    );
  }
}
