import { parseArgs } from "node:util";
import { byteSize, loadConfig } from "../../schema/config.ts";
import { estimateMemoryPlan, formatBytes, listModels, readModel } from "../model/inspect.ts";
import { pullModel } from "../model/pull.ts";
import { CliError, progressBar } from "./output.ts";

const USAGE = `usage:
  docket model pull <hf:user/repo:quant | hf:user/repo/file.gguf | https://…/file.gguf> [--dir DIR] [--hf-endpoint URL]
  docket model list [--dir DIR] [--json]
  docket model inspect <file.gguf> [--budget 50GB] [--context 8192] [--batch 32] [--json]

DIR defaults to DOCKET_MODELS_DIR (./models). Budget, context and batch default to DOCKET_GPU_MEMORY_BYTES,
DOCKET_CONTEXT_SIZE and DOCKET_MAX_BATCH. A pull that was interrupted resumes where it stopped.`;

export async function run(argv: string[]): Promise<void> {
  const config = loadConfig();
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      dir: { type: "string", default: config.DOCKET_MODELS_DIR },
      "hf-endpoint": { type: "string" },
      budget: { type: "string" },
      context: { type: "string" },
      batch: { type: "string" },
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  const [sub, target] = positionals;
  if (values.help || !sub) return void console.log(USAGE);

  if (sub === "pull") {
    if (!target) throw new CliError(`pull needs a model URI\n${USAGE}`, 2);
    const bar = progressBar("pull");
    const ac = new AbortController();
    const stop = () => ac.abort(new Error("interrupted; run the same pull again to resume"));
    process.once("SIGINT", stop);
    try {
      const { path, skipped } = await pullModel({
        uri: target,
        directory: values.dir,
        ...(values["hf-endpoint"] ? { huggingFaceEndpoint: values["hf-endpoint"] } : {}),
        onProgress: ({ downloadedSize, totalSize }) => bar.update(downloadedSize, totalSize),
        signal: ac.signal,
      });
      bar.done();
      console.log(skipped ? `${path} (already downloaded)` : path);
    } catch (err) {
      bar.done();
      throw new CliError(`could not pull ${target}: ${(err as Error).message}`);
    } finally {
      process.off("SIGINT", stop);
    }
    return;
  }

  if (sub === "list") {
    const models = await listModels(values.dir);
    if (values.json) return void console.log(JSON.stringify(models, null, 2));
    if (models.length === 0) return void console.log(`no models in ${values.dir} (docket model pull <uri> fetches one)`);
    for (const m of models) {
      const s = m.summary;
      console.log(
        s
          ? `${m.file}  ${formatBytes(m.sizeBytes)}  ${s.architecture}  ${s.quantization}  ${s.layers} layers  ctx ${s.trainContextSize ?? "?"}`
          : `${m.file}  ${formatBytes(m.sizeBytes)}  unreadable: ${m.error}`,
      );
    }
    return;
  }

  if (sub === "inspect") {
    if (!target) throw new CliError(`inspect needs a GGUF file\n${USAGE}`, 2);
    let model: Awaited<ReturnType<typeof readModel>>;
    try {
      model = await readModel(target);
    } catch (err) {
      throw new CliError(`${target} is not a readable GGUF file: ${(err as Error).message}`);
    }
    const budget = values.budget ? byteSize.parse(values.budget) : config.DOCKET_GPU_MEMORY_BYTES;
    const plan = estimateMemoryPlan(model.insights, {
      budget,
      contextSize: values.context ? Number(values.context) : config.DOCKET_CONTEXT_SIZE,
      sequences: values.batch ? Number(values.batch) : config.DOCKET_MAX_BATCH,
    });
    const s = model.summary;
    if (values.json) return void console.log(JSON.stringify({ model: s, plan }, null, 2));
    console.log(
      [
        `file          ${s.path}`,
        `name          ${s.name}`,
        `architecture  ${s.architecture}${s.hybrid ? " (hybrid/recurrent)" : ""}`,
        `size          ${formatBytes(s.sizeBytes)}`,
        `quantization  ${s.quantization}`,
        `parameters    ${(s.parameters / 1e9).toFixed(s.parameters < 1e8 ? 4 : 2)} B`,
        `layers        ${s.layers}`,
        `context       ${s.trainContextSize ?? "unknown"} tokens (trained)`,
        "",
        `memory plan for ${plan.sequences} sequences × ${plan.contextSize} tokens, budget ${formatBytes(plan.budget)}:`,
        `  model       ${formatBytes(plan.modelBytes)}`,
        `  context     ${formatBytes(plan.contextBytes)}`,
        `  total       ${formatBytes(plan.totalBytes)}  ${plan.fits ? "fits" : "DOES NOT FIT"}`,
        `  at most ${plan.maxSequences} sequences of ${plan.contextSize} tokens fit this budget`,
      ].join("\n"),
    );
    return;
  }
  throw new CliError(`unknown model command "${sub}"\n${USAGE}`, 2);
}
