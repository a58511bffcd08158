import { existsSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import { z } from "zod";
import { type ConfigFileValues, DEFAULT_CONFIG_FILE, parseConfigFile } from "./config-file.ts";
import { isModelName, toModelName } from "./model.ts";

const int = (def: number, min = 0) => z.coerce.number().int().min(min).default(def);
const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === "" ? undefined : v));

/** Sizes like "50GB", "512MiB", "1048576" → bytes. */
export const byteSize = z.string().transform((v, ctx) => {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib|gb|gib|tb|tib)?\s*$/i.exec(v);
  if (!m) {
    ctx.addIssue({ code: "custom", message: `not a size: "${v}" (use e.g. 50GB, 512MiB or a byte count)` });
    return z.NEVER;
  }
  const unit = (m[2] ?? "b").toLowerCase();
  const mult: Record<string, number> = {
    b: 1,
    kb: 1e3,
    kib: 1024,
    mb: 1e6,
    mib: 1024 ** 2,
    gb: 1e9,
    gib: 1024 ** 3,
    tb: 1e12,
    tib: 1024 ** 4,
  };
  return Math.round(Number(m[1]) * (mult[unit] ?? 1));
});

/** Comma-separated http(s) URLs → their origins ("https://docket.example.com"); a path or query is ignored. */
export const publicUrls = z
  .string()
  .optional()
  .transform((v, ctx) => {
    const origins: string[] = [];
    for (const part of (v ?? "").split(",").map((s) => s.trim())) {
      if (!part) continue;
      const url = URL.canParse(part) ? new URL(part) : undefined;
      if (!url || (url.protocol !== "http:" && url.protocol !== "https:")) {
        ctx.addIssue({ code: "custom", message: `not an http(s) URL: "${part}" (e.g. https://docket.example.com)` });
        return z.NEVER;
      }
      origins.push(url.origin);
    }
    return origins;
  });

/** DOCKET_MODEL_NAME, DOCKET_DEFAULT_MODEL: a model name as jobs name it (schema/model.ts); "docket" is OpenAI's alias of the default. */
const modelName = optionalString.superRefine((v, ctx) => {
  if (v === undefined) return;
  if (v === "docket")
    ctx.addIssue({ code: "custom", message: `"docket" names the default model in OpenAI requests: choose another name` });
  else if (!isModelName(v)) {
    const suggestion = toModelName(v);
    ctx.addIssue({
      code: "custom",
      message: `not a model name: "${v}" (lowercase letters, digits, '-' and '_'${suggestion ? `, e.g. ${suggestion}` : ""})`,
    });
  }
});

/** DOCKET_QUANTIZATION: "4bit", "4-bit", or a GGUF type name (Q4_K_M, IQ4_XS, MXFP4_MOE, F16, ...). */
const QUANTIZATION = /^(\d{1,2}-?bits?|(I?Q\d|TQ\d)[A-Z0-9_]*|MXFP4_MOE|B?F16|F32)$/i;

/** DOCKET_GPU_LAYERS: "auto" or a whole number of layers. */
export const gpuLayerCount = z
  .string()
  .transform((v, ctx) => {
    const t = v.trim().toLowerCase();
    if (t === "auto") return "auto" as const;
    if (!/^\d+$/.test(t)) {
      ctx.addIssue({ code: "custom", message: `not a layer count: "${v}" (use auto or a whole number, e.g. 40)` });
      return z.NEVER;
    }
    return Number(t);
  })
  .prefault("auto");

/** What a variable means, for the generated reference (docs/configuration.md); `unset` says what no value does. */
interface VariableDoc {
  description: string;
  unset?: string;
}
const doc = <T extends z.ZodType>(schema: T, description: string, unset?: string): T =>
  schema.meta({ description, ...(unset ? { unset } : {}) } satisfies VariableDoc);
/** A byte size whose default is written as a user would write it ("256KiB"). */
const size = (def: string) => byteSize.prefault(def);

/*
 * Naming rule: a duration carries its unit (_MS, _SECONDS, _DAYS) and so does a byte size (_BYTES; the value
 * may be written with a unit, "50GB" or "512MiB", and is read as bytes). Counts are named for what they count.
 */

const file = {
  DOCKET_CONFIG: doc(
    optionalString,
    "YAML config file in the deployment plan's shape (`service:`, `model:`; see below); variables set in the environment win over it; `npm start --config <file>` sets it for the processes it starts",
    "`./docket.yaml` when it exists",
  ),
};

const producer = {
  DOCKET_SERVICE_NAME: doc(
    z.string().min(1).default("docket"),
    "name of this deployment: the `service` field of every log line of the producer and the workers",
  ),
  DOCKET_PORT: doc(int(8080), "producer HTTP port"),
  DOCKET_HOST: doc(z.string().default("127.0.0.1"), "bind address of the producer and of the worker's monitor port"),
  DOCKET_PUBLIC_URL: doc(
    publicUrls,
    "the address(es) clients and browsers use when it is not the listen address (a reverse proxy, a host name), comma-separated: each URL's host is accepted in `Host` and its origin in `Origin` on requests that change something",
    "unset: `Host` must be `localhost`, an IP address or DOCKET_HOST; `Origin` must be the server itself",
  ),
  NATS_URL: doc(z.string().default("nats://127.0.0.1:4222"), "JetStream server(s), comma-separated"),
  DOCKET_DATA_DIR: doc(
    optionalString,
    "folder of one stack's local state: the SQLite file (unless DOCKET_DB names another) and the store of the nats-server `npm start` runs (`<dir>/nats`); two stacks with different folders share nothing",
    "the folder of DOCKET_DB, or `./data` when neither is set",
  ),
  DOCKET_DB: doc(
    optionalString,
    "SQLite file (the producer is its only writer)",
    "`<DOCKET_DATA_DIR>/docket.db`, or `./data/docket.db`",
  ),
  DOCKET_API_KEY: doc(
    optionalString,
    "bootstrap admin key: when set, every route but `/healthz`, `/readyz`, `/docs`, `/openapi.json` needs `Authorization: Bearer <key>`",
    "unset: auth off, warned at start",
  ),
  DOCKET_RATE_LIMIT: doc(
    z.coerce.number().min(0).default(50),
    "requests per second per API key (per client address when auth is off); 0 turns rate limiting off; past it 429 `rate_limited` with `Retry-After`",
  ),
  DOCKET_RATE_BURST: doc(int(100, 1), "requests a key may send at once above the rate (token bucket size)"),
  DOCKET_LOG_LEVEL: doc(
    z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"]).default("info"),
    "pino level: trace, debug, info, warn, error, fatal or silent",
  ),
  DOCKET_LOG_FORMAT: doc(optionalString, "`json` or `pretty`", "pretty on a terminal, JSON otherwise"),
  DOCKET_PROVISION: doc(
    z.enum(["auto", "skip"]).default("auto"),
    "`auto`: the producer provisions JetStream at start-up; `skip`: it does not (a restricted NATS user may not create streams: run `npm run provision` as the admin user)",
  ),
  DOCKET_DASHBOARD_SAMPLE_SECONDS: doc(
    int(5, 1),
    "how often the producer samples the dashboard's history (throughput, tokens/s, queue, running jobs) into the hour it keeps in memory; the workers' heartbeats, whose tokens/s it reads, come every 5 s",
  ),
  DOCKET_JETSTREAM_CHECK_SECONDS: doc(
    int(15, 1),
    "how often (besides on every NATS reconnect) the producer checks that JetStream still holds docket's streams, consumers and buckets, provisions what is missing (unless DOCKET_PROVISION=skip) and republishes the jobs a lost DOCKET_JOBS held",
  ),
  DOCKET_REPLICAS: doc(int(1, 1), "replicas of every stream and bucket: 1 for one server, 3 for a three-node cluster"),
  DOCKET_PREFIX_ROUTING: doc(
    z.enum(["true", "false"]).default("true"),
    "the producer sends a job on a document to the live worker that finished one of its tasks lately (it holds the document's evaluated prefix) while that worker has room: as many routed jobs queued as it decodes at once; the rest go to any worker",
  ),
};

const limits = {
  DOCKET_INLINE_LIMIT_BYTES: doc(
    size("256KiB"),
    "documents whose JSON-escaped text is above this size go to the `docket-docs` object store instead of inline in the job message (whatever this says, a job message is kept under the NATS server's `max_payload`: a document or params that would not fit go there too)",
  ),
  DOCKET_MAX_DOCUMENT_BYTES: doc(size("32MiB"), "largest document accepted (413 `payload_too_large` above it)"),
  DOCKET_MAX_BATCH_BODY_BYTES: doc(
    size("256MiB"),
    "largest `POST /v1/batches` body (JSON, JSONL or multipart) and largest `POST /openai/v1/files` upload",
  ),
  DOCKET_MAX_BATCH_ITEMS: doc(int(50_000, 1), "most items in one batch"),
  DOCKET_MAX_QUEUED_JOBS: doc(
    int(1_000_000, 1),
    "most jobs waiting in DOCKET_JOBS (stream `max_msgs`); past it submissions get 429 `backpressure` with `Retry-After`",
  ),
  DOCKET_MAX_DELIVER: doc(int(5, 1), "deliveries of a job before a retryable failure is final"),
  DOCKET_PREFIX_SHARED_BYTES: doc(
    size("8GiB"),
    "most bytes the shared document-prefix checkpoints (object store `docket-prefix`, kept 6 hours) take; 0: no limit",
  ),
  DOCKET_ACK_WAIT_SECONDS: doc(
    int(60, 1),
    "time JetStream waits for a job's ack before redelivering it (workers send in-progress acks during long generations)",
  ),
  DOCKET_EVENTS_MAX_AGE_DAYS: doc(int(7, 1), "how long DOCKET_EVENTS keeps events"),
  DOCKET_DEADLINE_CHECK_MS: doc(
    int(5_000, 50),
    "how often the producer fails queued jobs whose `deadline` passed (`deadline_exceeded`) and expires batches whose completion window ended (workers also refuse a job past its deadline when they pull it)",
  ),
  DOCKET_OPENAI_BATCH_WINDOW_SECONDS: doc(
    int(86_400, 1),
    "length of an OpenAI batch's `completion_window` (`24h`): a batch still unfinished then ends `expired` and its unfinished requests `batch_expired`; shorten it only to test expiry",
  ),
  DOCKET_CHAT_TIMEOUT_SECONDS: doc(
    int(300, 1),
    "how long `POST /openai/v1/chat/completions` waits for its job before answering 504",
  ),
};

const extraction = {
  DOCKET_EXTRACT_THREADS: doc(
    int(2, 1),
    "worker threads that extract the text of uploaded PDF and DOCX files, off the API's event loop",
  ),
  DOCKET_EXTRACT_QUEUE: doc(
    int(32, 0),
    "uploaded files waiting for an extraction thread, at most; past it 429 `backpressure` with `Retry-After`",
  ),
  DOCKET_EXTRACT_MAX_PAGES: doc(int(2_000, 1), "most pages of an uploaded PDF (413 `too_many_pages` above it)"),
  DOCKET_EXTRACT_MAX_UNCOMPRESSED_BYTES: doc(
    size("64MiB"),
    "most bytes an uploaded DOCX may inflate to, all zip entries together, read from the zip's directory before anything is inflated (413 `uncompressed_too_large` above it)",
  ),
  DOCKET_EXTRACT_TIMEOUT_MS: doc(
    int(30_000, 100),
    "longest one file's text extraction may take; its thread is stopped past it (422 `extraction_timeout`)",
  ),
  DOCKET_EXTRACT_MEMORY_BYTES: doc(
    size("1GiB"),
    "JavaScript heap of one extraction thread; a file that needs more stops its thread (422 `extraction_out_of_memory`)",
  ),
  DOCKET_OCR: doc(
    z.enum(["auto", "true", "false"]).default("auto"),
    "read scanned PDF pages and image files (PNG, JPEG, TIFF) by OCR (tesseract.js, English) on the extraction threads; `false`: such files are refused (422 `scanned_document`); `true`: the producer does not start without the OCR engine",
    "`auto`: on when the OCR engine is installed (it is a dependency)",
  ),
  DOCKET_OCR_MAX_PAGES: doc(
    int(50, 1),
    "most pages of one PDF read by OCR (pages without a text layer); a PDF with more is refused (413 `too_many_pages`)",
  ),
  DOCKET_OCR_TIMEOUT_MS: doc(
    int(300_000, 100),
    "longest one file's text extraction may take once it needs OCR (about 1-3 s a page on one core); its thread is stopped past it (422 `extraction_timeout`)",
  ),
};

const worker = {
  DOCKET_MODEL: doc(
    optionalString,
    "GGUF path, URL or `hf:` URI; the worker needs it",
    "unset; `npm start` then hands the worker the generated demo model (random weights: noise)",
  ),
  DOCKET_QUANTIZATION: doc(
    optionalString.refine((v) => v === undefined || QUANTIZATION.test(v), {
      message: "not a quantization (use a bit width such as 4bit, or a GGUF type such as Q4_K_M or IQ4_XS)",
    }),
    "quantization the model must have: a bit width (`4bit`: Q4_K_M, IQ4_XS, MXFP4_MOE, ...) or a GGUF type (`Q4_K_M`); the worker refuses a file of another one. It picks the file when DOCKET_MODEL is a folder, and the tag of an `hf:user/repo` URI without one (`4bit`: Q4_K_M)",
    "unset: any",
  ),
  DOCKET_MODEL_NAME: doc(
    modelName,
    "the model name this worker serves: jobs and OpenAI requests naming it (`model`) are routed to it and to no other worker (lowercase letters, digits, '-' and '_'); it stays the name when the worker falls back to DOCKET_FALLBACK_MODEL",
    "derived from DOCKET_MODEL: the GGUF's `general.name` (or the file name), lowercased, other characters turned to `-`",
  ),
  DOCKET_DEFAULT_MODEL: doc(
    modelName,
    "the model that runs the jobs naming no model: workers serving another model do not take them; the producer names it in a waiting job's hint. Set it on every process of a deployment that serves several models",
    "unset: every worker also takes the jobs naming no model (a deployment of one model)",
  ),
  DOCKET_FALLBACK_MODEL: doc(optionalString, "model to fall back to when the main one cannot run", "unset: no fallback"),
  DOCKET_WORKER_ID: doc(optionalString, "worker name in events and heartbeats", "host-pid"),
  DOCKET_WORKER_PORT: doc(
    int(9090),
    "port of the worker's `/healthz`, `/readyz` and `/metrics` (on DOCKET_HOST); 0 picks a free one",
  ),
  DOCKET_WORKERS: doc(
    int(1, 1),
    "worker processes `npm start` launches on this host; they share DOCKET_GPU_MEMORY_BYTES (each plans for an equal part, and `npm start` refuses a count whose part cannot hold the model). One worker batches up to DOCKET_MAX_BATCH jobs by itself",
  ),
  DOCKET_MAX_BATCH: doc(int(32, 1), "sequences (parallel jobs) in the worker's one context"),
  DOCKET_BATCH_SIZE: doc(
    int(0),
    "active sequences: 0 lets the adaptive batcher choose (up to DOCKET_MAX_BATCH); N fixes the batch at N",
  ),
  DOCKET_LATENCY_TARGET_MS: doc(
    int(120_000),
    "p95 job run time above which the adaptive batcher cuts the batch; 0 disables the rule",
  ),
  DOCKET_BATCH_WINDOW_MS: doc(int(2_000, 250), "length of one adaptive-batcher measurement window"),
  DOCKET_CONTEXT_SIZE: doc(int(8192, 256), "tokens of context per sequence (capped at the model's training context)"),
  DOCKET_GPU_MEMORY_BYTES: doc(size("50GB"), "memory budget of the worker's model and context (the memory planner's budget)"),
  DOCKET_GPU_LAYERS: doc(
    gpuLayerCount,
    "layers on the GPU (node-llama-cpp's `gpuLayers`: the model's repeating layers, plus 1 for the output layer); the others stay in system memory, which costs speed, not budget. `auto`: every layer when one sequence of DOCKET_CONTEXT_SIZE fits beside the weights, otherwise the most that leave room for one; `npx docket model plan` prints the count that runs the full batch",
  ),
  DOCKET_GPU: doc(
    z.enum(["auto", "false", "cuda", "vulkan", "metal"]).default("auto"),
    "`auto`, `false` (CPU only), `cuda`, `vulkan` or `metal`",
  ),
  DOCKET_THREADS: doc(
    int(0),
    "llama.cpp math threads; 0: all cores but one (the event loop, the producer and nats-server need one)",
  ),
  DOCKET_STEP_TOKENS: doc(
    int(0),
    "most prompt tokens of batch-lane jobs in one decode step, so that an interactive job arriving mid-step waits for a shorter step; shared by the sequences in the step, so a cap costs prompt speed when several prompts are evaluated together (docs/worker.md); 0: the context's whole batch",
  ),
  DOCKET_STEP_MS: doc(
    z.coerce.number().min(0).max(10_000).default(100),
    "while people's jobs are about (an interactive job in the last 60 s), the most milliseconds of prompt work in a batch-lane decode step, from the measured cost of a prompt token, so that a person's job arriving mid-step waits for a short step (docs/worker.md); 0: off",
  ),
  DOCKET_LOCKSTEP_MS: doc(
    z.coerce.number().min(0).max(100).default(2),
    "how long a decode step may wait (milliseconds) for a generating sequence of the previous step to queue its next token, so that sequences decode together instead of one trailing a step behind, and batch sequences wait for a running interactive job's next token instead of running a step it would wait for (docs/worker.md); 0: off",
  ),
  DOCKET_MAX_TOKENS: doc(int(512, 1), "`params.maxTokens` of a job that does not set one"),
  DOCKET_PREFIX_REUSE: doc(
    z.enum(["true", "false"]).default("true"),
    "reuse a document's evaluated prompt across the jobs on it (docs/prefix-reuse.md); `false`: every job evaluates its whole prompt",
  ),
  DOCKET_PREFIX_CACHE_BYTES: doc(
    size("2GiB"),
    "disk (or tmpfs) the worker keeps document-prefix checkpoints in, least recently used evicted; 0 keeps none (sequences still reuse what they hold)",
  ),
  DOCKET_PREFIX_SHARE: doc(
    z.enum(["true", "false"]).default("true"),
    "share prefix checkpoints with the other workers through the NATS object store `docket-prefix`, so a document is evaluated once for all of them",
  ),
  DOCKET_PREFIX_CACHE_DIR: doc(
    optionalString,
    "folder of the prefix checkpoints; point it at a tmpfs such as /dev/shm to keep them in RAM",
    "unset: `docket-prefix` in the system temp folder",
  ),
  DOCKET_GRACE_SECONDS: doc(
    int(30, 0),
    "how long a SIGTERM'd worker lets in-flight jobs finish before returning the rest to the queue",
  ),
  DOCKET_MODELS_DIR: doc(z.string().default("./models"), "where `docket model pull` saves models and `docket model list` looks"),
};

const webhooks = {
  DOCKET_WEBHOOK_SECRET: doc(
    optionalString,
    "Standard Webhooks secret, `whsec_` + base64 of 24-64 bytes",
    "generated on first start and stored in the `settings` table (`npm run webhook:secret` prints it)",
  ),
  DOCKET_WEBHOOK_ALLOW: doc(
    optionalString,
    "callback addresses allowed although not public, comma-separated: `loopback`, `private` (10/8, 172.16/12, 192.168/16, fc00::/7) and CIDRs; metadata addresses and IPv6 outside global unicast or in its special ranges (NAT64, 6to4, Teredo) need an explicit CIDR",
    "unset: public addresses only",
  ),
  DOCKET_WEBHOOK_MAX_ATTEMPTS: doc(
    int(30, 1),
    "delivery attempts before a webhook is `dead` (30 at the default backoff span just over a day)",
  ),
  DOCKET_WEBHOOK_RETRY_BASE_MS: doc(
    int(60_000, 1),
    "delay before the first retry; doubles per attempt up to DOCKET_WEBHOOK_RETRY_MAX_MS, plus up to 25% jitter",
  ),
  DOCKET_WEBHOOK_RETRY_MAX_MS: doc(int(3_600_000, 1), "longest delay between two attempts (before jitter)"),
  DOCKET_WEBHOOK_TIMEOUT_MS: doc(int(10_000, 100), "per-request timeout of a delivery"),
  DOCKET_WEBHOOK_CONCURRENCY: doc(int(8, 1), "deliveries in flight at once"),
};

const nats = {
  NATS_USER: doc(optionalString, "NATS user of this process (docs/security.md)", "unset: no user, as `npm start` runs NATS"),
  NATS_PASSWORD: doc(optionalString, "password of NATS_USER", "unset"),
  NATS_CREDS: doc(optionalString, "NATS credentials file (JWT + nkey seed), for operator-mode servers", "unset"),
  NATS_TLS_CA: doc(
    optionalString,
    "PEM CA file that signed the server's certificate; set it to connect with TLS",
    "unset: plain TCP",
  ),
  NATS_TLS_CERT: doc(optionalString, "PEM client certificate, for servers that verify clients (mutual TLS)", "unset"),
  NATS_TLS_KEY: doc(optionalString, "PEM key of NATS_TLS_CERT", "unset"),
};

const cli = {
  DOCKET_URL: doc(
    optionalString,
    "producer the CLI's batch commands (`submit`, `status`, `watch`, `results`, `cancel`) call",
    "http://DOCKET_HOST:DOCKET_PORT",
  ),
};

/** The variables by topic, in the order docs/configuration.md lists them. */
export const CONFIG_GROUPS = [
  { title: "Config file", shape: file },
  { title: "Producer and API", shape: producer },
  { title: "Limits and queue", shape: limits },
  { title: "Text extraction (PDF, DOCX uploads)", shape: extraction },
  { title: "Worker", shape: worker },
  { title: "Webhooks", shape: webhooks },
  { title: "NATS connection and security", shape: nats },
  { title: "Command line", shape: cli },
] as const;

/**
 * Every environment variable docket reads, with its default: the one place a default is written.
 * docs/configuration.md is generated from it (`npm run docs:config`).
 */
export const ConfigSchema = z.object({ ...file, ...producer, ...limits, ...extraction, ...worker, ...webhooks, ...nats, ...cli });
/** The parsed variables, with DOCKET_DB and DOCKET_DATA_DIR resolved from each other (dataPaths). */
export type Config = Omit<z.infer<typeof ConfigSchema>, "DOCKET_DB" | "DOCKET_DATA_DIR"> & {
  DOCKET_DB: string;
  DOCKET_DATA_DIR: string;
};

/**
 * The data folder and the SQLite file, each defaulting to the other: DOCKET_DB alone puts the data folder
 * beside it, DOCKET_DATA_DIR alone puts docket.db in it, neither is ./data and ./data/docket.db.
 */
export function dataPaths(db: string | undefined, dataDir: string | undefined): { DOCKET_DB: string; DOCKET_DATA_DIR: string } {
  if (db !== undefined) return { DOCKET_DB: db, DOCKET_DATA_DIR: dataDir ?? dirname(db) };
  const dir = dataDir ?? "./data";
  return { DOCKET_DB: `${dir.replace(/\/+$/, "")}/docket.db`, DOCKET_DATA_DIR: dir };
}

export class ConfigError extends Error {
  readonly code = "invalid_config";
}

/** Names that carried no unit, still read with a warning: old name → new name. */
export const DEPRECATED_NAMES = {
  DOCKET_ACK_WAIT: "DOCKET_ACK_WAIT_SECONDS",
  DOCKET_CHAT_TIMEOUT: "DOCKET_CHAT_TIMEOUT_SECONDS",
  DOCKET_INLINE_LIMIT: "DOCKET_INLINE_LIMIT_BYTES",
  DOCKET_MAX_DOCUMENT: "DOCKET_MAX_DOCUMENT_BYTES",
  DOCKET_MAX_BATCH_BODY: "DOCKET_MAX_BATCH_BODY_BYTES",
  DOCKET_GPU_MEMORY: "DOCKET_GPU_MEMORY_BYTES",
} as const satisfies Record<string, keyof Config>;

export interface ReadConfigOptions {
  /** The config file to read; false reads none. Default: DOCKET_CONFIG, else ./docket.yaml when reading process.env. */
  file?: string | false;
}

/**
 * The config from the environment over the config file, and one warning line per deprecated name found in `env`
 * (the service logs them at start). A caller that passes its own `env` (a test) reads no file unless DOCKET_CONFIG
 * or `options.file` names one; reading process.env also looks for ./docket.yaml.
 */
export function readConfig(
  env: Record<string, string | undefined> = process.env,
  options: ReadConfigOptions = {},
): { config: Config; warnings: string[]; file?: string } {
  const input: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) if (value !== undefined) input[name] = value;
  const warnings: string[] = [];
  const setAs: Record<string, string> = {};
  for (const [old, name] of Object.entries(DEPRECATED_NAMES)) {
    if (input[old] === undefined) continue;
    if (input[name] === undefined) {
      input[name] = input[old];
      setAs[name] = old;
      warnings.push(`${old} is deprecated: rename it ${name} (same value)`);
    } else warnings.push(`${old} is deprecated and ignored: ${name} is set`);
    delete input[old];
  }
  const path =
    options.file === false
      ? undefined
      : (options.file ??
        input.DOCKET_CONFIG ??
        (env === process.env && existsSync(DEFAULT_CONFIG_FILE) ? DEFAULT_CONFIG_FILE : undefined));
  let fromFile: ConfigFileValues = { vars: {}, keys: {} };
  if (path) {
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (err) {
      throw new ConfigError(`invalid configuration: cannot read the config file ${path}: ${(err as Error).message}`);
    }
    try {
      fromFile = parseConfigFile(text, path);
    } catch (err) {
      throw new ConfigError(`invalid configuration: ${(err as Error).message}`);
    }
  }
  // An empty variable is unset, as optional variables read it: it does not hide the file's value.
  for (const name of Object.keys(fromFile.vars)) if (input[name] === "") delete input[name];
  const parsed = ConfigSchema.safeParse({ ...fromFile.vars, ...input, ...(path ? { DOCKET_CONFIG: path } : {}) });
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => {
      const name = i.path.join(".");
      const key = input[name] === undefined ? fromFile.keys[name] : undefined;
      if (key) return `${key} in ${path} (${name}): ${i.message}`;
      return setAs[name] ? `${name} (set as ${setAs[name]}): ${i.message}` : `${name}: ${i.message}`;
    });
    throw new ConfigError(`invalid configuration:\n  ${lines.join("\n  ")}`);
  }
  const config: Config = { ...parsed.data, ...dataPaths(parsed.data.DOCKET_DB, parsed.data.DOCKET_DATA_DIR) };
  return { config, warnings, ...(path ? { file: path } : {}) };
}

export function loadConfig(env: Record<string, string | undefined> = process.env, options: ReadConfigOptions = {}): Config {
  return readConfig(env, options).config;
}
