import { existsSync } from "node:fs";
import { type ParseArgsConfig, parseArgs } from "node:util";
import { byteSize, type Config, gpuLayerCount, loadConfig } from "../../schema/config.ts";
import { formatBytes } from "../../worker/planner.ts";
import { listModels, readModel } from "../model/inspect.ts";
import { BUILT_IN, DEFAULT_MEMORY_BYTES, loadSizingModel, renderSizing, type SizingRequest, sizeModel } from "../model/plan.ts";
import { pullModel } from "../model/pull.ts";
import { FOUR_BIT_QUANTS, parseQuant, type Quant } from "../model/quants.ts";
import { CliError, EXIT, progressBar } from "./output.ts";

const USAGE = `usage:
  docket model pull <hf:user/repo:quant | hf:user/repo/file.gguf | https://…/file.gguf> [--dir DIR] [--hf-endpoint URL]
  docket model list [--dir DIR] [--json]
  docket model inspect <file.gguf> [--json]
  docket model plan [<file.gguf> | <hf:user/repo:quant> | qwen3next] [--memory 48GB,50GB,64GB,96GB]
                    [--context 8192,2048] [--batch 32] [--quant Q4_K_M,IQ4_NL,IQ4_XS] [--gpu-layers auto|N]
                    [--workers 1] [--hf-endpoint URL] [--json]

list     every model docket can use: DOCKET_MODEL, DOCKET_FALLBACK_MODEL, the GGUF files in DIR
         (DOCKET_MODELS_DIR, ./models) and the generated demo model.
inspect  a GGUF file's architecture, size, quantization, layers, KV cache per token and recurrent state.
plan     for each memory size and each common 4-bit quantization of the model, how many sequences fit at
         each context and what runs DOCKET_MAX_BATCH × DOCKET_CONTEXT_SIZE when they do not (fewer GPU
         layers: DOCKET_GPU_LAYERS), then what the worker would do with the requested settings. The model
         is a GGUF file, an hf: URI (only its header is read), or qwen3next (a built-in Qwen3-Next-80B-A3B
         header); default DOCKET_MODEL, else qwen3next. --batch, --context (its first value), --gpu-layers and
         --workers default to DOCKET_MAX_BATCH, DOCKET_CONTEXT_SIZE, DOCKET_GPU_LAYERS and DOCKET_WORKERS; --memory adds
         DOCKET_GPU_MEMORY_BYTES to 48, 50, 64 and 96 GB. Sizes are in GB (10^9 bytes).
         Exit code ${EXIT.doesNotFit} when the requested batch × context does not run as asked in one of the memory sizes.

A pull that was interrupted resumes where it stopped.`;

function args<T extends NonNullable<ParseArgsConfig["options"]>>(argv: string[], options: T) {
  try {
    return parseArgs({ args: argv, allowPositionals: true, options: { ...options, help: { type: "boolean", short: "h" } } });
  } catch (err) {
    throw new CliError(`${(err as Error).message}\n${USAGE}`, EXIT.usage);
  }
}

const list = (v: string | undefined) =>
  v
    ?.split(",")
    .map((s) => s.trim())
    .filter(Boolean);

function whole(option: string, v: string, min: number): number {
  if (!/^\d+$/.test(v.trim()) || Number(v) < min) {
    throw new CliError(`--${option}: "${v}" is not a whole number of at least ${min}`, EXIT.usage);
  }
  return Number(v);
}

function size(v: string): number {
  const parsed = byteSize.safeParse(v);
  if (!parsed.success || parsed.data <= 0) throw new CliError(`--memory: not a size: "${v}" (use e.g. 48GB,50GB)`, EXIT.usage);
  return parsed.data;
}

export async function run(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  if (!sub || sub === "--help" || sub === "-h" || sub === "help") return void console.log(USAGE);
  const config = loadConfig();
  if (sub === "pull") return pull(rest, config);
  if (sub === "list") return listCommand(rest, config);
  if (sub === "inspect") return inspect(rest);
  if (sub === "plan") return plan(rest, config);
  throw new CliError(`unknown model command "${sub}"\n${USAGE}`, EXIT.usage);
}

async function pull(argv: string[], config: Config): Promise<void> {
  const { values, positionals } = args(argv, { dir: { type: "string" }, "hf-endpoint": { type: "string" } });
  if (values.help) return void console.log(USAGE);
  const target = positionals[0];
  if (!target) throw new CliError(`pull needs a model URI\n${USAGE}`, EXIT.usage);
  const bar = progressBar("pull");
  const ac = new AbortController();
  const stop = () => ac.abort(new Error("interrupted; run the same pull again to resume"));
  process.once("SIGINT", stop);
  try {
    const { path, skipped } = await pullModel({
      uri: target,
      directory: values.dir ?? config.DOCKET_MODELS_DIR,
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
}

async function listCommand(argv: string[], config: Config): Promise<void> {
  const { values } = args(argv, { dir: { type: "string" }, json: { type: "boolean" } });
  if (values.help) return void console.log(USAGE);
  const models = await listModels({
    dir: values.dir ?? config.DOCKET_MODELS_DIR,
    model: config.DOCKET_MODEL,
    fallback: config.DOCKET_FALLBACK_MODEL,
  });
  if (values.json) return void console.log(JSON.stringify(models, null, 2));
  const rows = models.map((m) => {
    const s = m.summary;
    return [
      m.role,
      s ? formatBytes(s.sizeBytes) : "",
      s?.architecture ?? "",
      s?.quantization ?? "",
      s ? `${s.layers}` : "",
      s ? `${s.trainContextSize ?? "?"}` : "",
      m.where + (m.error ? `  (unreadable: ${m.error})` : m.note ? `  (${m.note})` : ""),
    ];
  });
  const head = ["role", "size", "architecture", "quantization", "layers", "context", "where"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  for (const r of [head, ...rows]) console.log(r.map((c, i) => (i < r.length - 1 ? c.padEnd(widths[i] ?? 0) : c)).join("  "));
  console.log("Sizes in GB/MB (powers of 1000).");
}

async function inspect(argv: string[]): Promise<void> {
  const { values, positionals } = args(argv, { json: { type: "boolean" } });
  if (values.help) return void console.log(USAGE);
  const target = positionals[0];
  if (!target) throw new CliError(`inspect needs a GGUF file\n${USAGE}`, EXIT.usage);
  if (!existsSync(target)) throw new CliError(`no such file: ${target}`, EXIT.usage);
  let s: Awaited<ReturnType<typeof readModel>>;
  try {
    s = await readModel(target);
  } catch (err) {
    throw new CliError(`${target} is not a readable GGUF file: ${(err as Error).message}`);
  }
  if (values.json) return void console.log(JSON.stringify(s, null, 2));
  console.log(
    [
      `file          ${s.path}`,
      `name          ${s.name}`,
      `architecture  ${s.architecture}`,
      `size          ${formatBytes(s.sizeBytes)}`,
      `quantization  ${s.quantization}`,
      `parameters    ${(s.parameters / 1e9).toFixed(s.parameters < 1e8 ? 4 : 2)} B`,
      `layers        ${s.layers}: ${s.attentionLayers} keep a KV cache, ${s.recurrentLayers} a fixed recurrent state`,
      `KV cache      ${formatBytes(s.kvBytesPerToken)} per token of context (f16)`,
      `state         ${formatBytes(s.recurrentStateBytesPerSequence)} per sequence`,
      `context       ${s.trainContextSize ?? "unknown"} tokens (trained)`,
      "",
      `How many sequences fit a memory budget: docket model plan ${s.path}`,
    ].join("\n"),
  );
}

async function plan(argv: string[], config: Config): Promise<void> {
  const { values, positionals } = args(argv, {
    memory: { type: "string" },
    context: { type: "string" },
    batch: { type: "string" },
    workers: { type: "string" },
    quant: { type: "string" },
    "gpu-layers": { type: "string" },
    "hf-endpoint": { type: "string" },
    qwen3next: { type: "boolean" },
    json: { type: "boolean" },
  });
  if (values.help) return void console.log(USAGE);
  if (positionals.length > 1) throw new CliError(`plan takes one model, got ${positionals.length}\n${USAGE}`, EXIT.usage);
  const target = values.qwen3next ? BUILT_IN : (positionals[0] ?? config.DOCKET_MODEL ?? BUILT_IN);
  const remote = /^(hf:|huggingface:|https?:\/\/)/.test(target);
  if (target !== BUILT_IN && !remote && !existsSync(target)) {
    throw new CliError(`no such file: ${target} (give a GGUF file, an hf: URI, or qwen3next)`, EXIT.usage);
  }

  const memories = list(values.memory)?.map(size) ?? [...new Set([...DEFAULT_MEMORY_BYTES, config.DOCKET_GPU_MEMORY_BYTES])];
  // The first context is the requested one.
  const contexts = list(values.context)?.map((c) => whole("context", c, 256)) ?? [
    ...new Set([config.DOCKET_CONTEXT_SIZE, 8192, 2048]),
  ];
  const quants = list(values.quant)?.map((q): Quant => {
    const parsed = parseQuant(q);
    if (!parsed) throw new CliError(`--quant: unknown quantization "${q}" (one of ${FOUR_BIT_QUANTS.join(", ")})`, EXIT.usage);
    return parsed;
  });
  const gpuLayers = values["gpu-layers"] !== undefined ? gpuLayerCount.safeParse(values["gpu-layers"]) : undefined;
  if (gpuLayers && !gpuLayers.success) {
    throw new CliError(`--gpu-layers: "${values["gpu-layers"]}" is not auto or a whole number of layers`, EXIT.usage);
  }
  const request: SizingRequest = {
    memoryBytes: [...memories].sort((a, b) => a - b),
    contexts,
    batch: values.batch !== undefined ? whole("batch", values.batch, 1) : config.DOCKET_MAX_BATCH,
    gpuLayers: gpuLayers?.data ?? config.DOCKET_GPU_LAYERS,
    cpuOnly: config.DOCKET_GPU === "false",
    workers: values.workers !== undefined ? whole("workers", values.workers, 1) : config.DOCKET_WORKERS,
  };

  let model: Awaited<ReturnType<typeof loadSizingModel>>;
  try {
    model = await loadSizingModel(target, {
      ...(quants ? { quants } : {}),
      ...(values["hf-endpoint"] ? { huggingFaceEndpoint: values["hf-endpoint"] } : {}),
    });
  } catch (err) {
    throw new CliError(`${target} is not a readable GGUF file: ${(err as Error).message}`);
  }
  const sizing = sizeModel(model, request);
  if (values.json) {
    const { verdicts, rows } = sizing;
    console.log(
      JSON.stringify(
        {
          model: { name: model.name, source: model.source, quantization: model.requested.quant },
          request,
          rows,
          verdicts: verdicts.map(({ plan: p, ...v }) => ({
            ...v,
            ...(p ? { plan: { ...p, shape: undefined, notes: p.notes } } : {}),
          })),
        },
        null,
        2,
      ),
    );
  } else console.log(renderSizing(model, request, sizing));
  if (sizing.verdicts.some((v) => !v.fits)) process.exitCode = EXIT.doesNotFit;
}
