import { z } from "zod";

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

/**
 * Every environment variable docket reads, with its default: the one place a default is written.
 * The README's configuration table mirrors this.
 */
export const ConfigSchema = z.object({
  DOCKET_PORT: int(8080),
  DOCKET_HOST: z.string().default("127.0.0.1"),
  NATS_URL: z.string().default("nats://127.0.0.1:4222"),
  DOCKET_DB: z.string().default("./data/docket.db"),
  /** GGUF path or hf: URI; the worker needs it (`npm start` sets the generated demo model, noise, when unset). */
  DOCKET_MODEL: optionalString,
  DOCKET_FALLBACK_MODEL: optionalString,
  /** Bootstrap admin key: when set, every /v1, /openai/v1, /dashboard and /metrics call needs a key. Unset: auth is off. */
  DOCKET_API_KEY: optionalString,
  DOCKET_WEBHOOK_SECRET: optionalString,
  DOCKET_LOG_LEVEL: z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"]).default("info"),
  /** Documents above this many bytes go to the object store instead of inline in the job message. */
  DOCKET_INLINE_LIMIT: byteSize.default(256 * 1024),
  /** Largest document accepted. */
  DOCKET_MAX_DOCUMENT: byteSize.default(32 * 1024 * 1024),
  /** JetStream redelivers a job this many times before the worker fails it for good. */
  DOCKET_MAX_DELIVER: int(5, 1),
  /** Seconds JetStream waits for an ack (workers send in-progress acks during long generations). */
  DOCKET_ACK_WAIT: int(60, 1),
  /** Days DOCKET_EVENTS keeps events. */
  DOCKET_EVENTS_MAX_AGE_DAYS: int(7, 1),
  /** Most jobs waiting in DOCKET_JOBS; past it submissions get 429 with Retry-After (backpressure). */
  DOCKET_MAX_QUEUED_JOBS: int(1_000_000, 1),
  /** Most items in one batch. */
  DOCKET_MAX_BATCH_ITEMS: int(50_000, 1),
  /** Largest batch request body (JSON, JSONL or multipart). */
  DOCKET_MAX_BATCH_BODY: byteSize.default(256 * 1024 * 1024),

  // Worker sizing: the reference deployment is a 4-bit model, 50 GB, context 8192, max batch 32.
  DOCKET_WORKER_ID: optionalString,
  /** Sequences (parallel jobs) in the worker's one context. */
  DOCKET_MAX_BATCH: int(32, 1),
  /** Active sequences: 0 lets the adaptive batcher choose (up to DOCKET_MAX_BATCH); N fixes the batch at N. */
  DOCKET_BATCH_SIZE: int(0),
  /** p95 job run time (ms) above which the adaptive batcher cuts the batch; 0 disables the rule. */
  DOCKET_LATENCY_TARGET_MS: int(120_000),
  /** Length of one adaptive-batcher measurement window (ms). */
  DOCKET_BATCH_WINDOW_MS: int(2_000, 250),
  /** Tokens of context per sequence. */
  DOCKET_CONTEXT_SIZE: int(8192, 256),
  DOCKET_GPU_MEMORY: byteSize.default(50e9),
  /** auto, false (CPU only), cuda, vulkan or metal. */
  DOCKET_GPU: z.enum(["auto", "false", "cuda", "vulkan", "metal"]).default("auto"),
  /** llama.cpp math threads; 0: all cores but one (the event loop, the producer and nats-server need one). */
  DOCKET_THREADS: int(0),
  /** Default maxTokens for a job that does not set one. */
  DOCKET_MAX_TOKENS: int(512, 1),
  /** Seconds a SIGTERM'd worker lets in-flight jobs finish. */
  DOCKET_GRACE_SECONDS: int(30, 0),

  // Webhooks (producer/webhooks/).
  /**
   * Callback addresses allowed although private: comma-separated `loopback`, `private` (10/8, 172.16/12,
   * 192.168/16, fc00::/7) and CIDRs. Unset: only public addresses. Metadata addresses need an explicit CIDR.
   */
  DOCKET_WEBHOOK_ALLOW: optionalString,
  /** Delivery attempts before a webhook is marked dead (30 at the default backoff span just over a day). */
  DOCKET_WEBHOOK_MAX_ATTEMPTS: int(30, 1),
  /** Delay before the first retry; doubles per attempt up to DOCKET_WEBHOOK_RETRY_MAX_MS, plus up to 25% jitter. */
  DOCKET_WEBHOOK_RETRY_BASE_MS: int(60_000, 1),
  DOCKET_WEBHOOK_RETRY_MAX_MS: int(3_600_000, 1),
  /** Per-request timeout of a delivery. */
  DOCKET_WEBHOOK_TIMEOUT_MS: int(10_000, 100),
  /** Deliveries in flight at once. */
  DOCKET_WEBHOOK_CONCURRENCY: int(8, 1),

  /** Seconds POST /openai/v1/chat/completions waits for its job before answering 504. */
  DOCKET_CHAT_TIMEOUT: int(300, 1),

  /** Port of the worker's /healthz, /readyz and /metrics server (bound to DOCKET_HOST); 0 picks a free one. */
  DOCKET_WORKER_PORT: int(9090),
  /** Where `docket model pull` and `model list` keep models. */
  DOCKET_MODELS_DIR: z.string().default("./models"),

  // NATS security (README: Security). Unset means an open server, as `npm start` runs it.
  NATS_USER: optionalString,
  NATS_PASSWORD: optionalString,
  /** NATS credentials file (JWT + nkey seed), for operator-mode servers. */
  NATS_CREDS: optionalString,
  /** PEM CA file that signed the server's certificate; set it to connect with TLS. */
  NATS_TLS_CA: optionalString,
  /** PEM client certificate and key, for servers that verify clients (mutual TLS). */
  NATS_TLS_CERT: optionalString,
  NATS_TLS_KEY: optionalString,
  /**
   * auto: the producer provisions JetStream at start-up. skip: it does not (a restricted NATS user may not
   * create streams; run `npm run provision` as the admin user instead).
   */
  DOCKET_PROVISION: z.enum(["auto", "skip"]).default("auto"),
  /** Replicas of every stream and bucket: 1 for one server, 3 for a three-node cluster. */
  DOCKET_REPLICAS: int(1, 1),

  /** Requests per second per API key (per client address when auth is off); 0 turns rate limiting off. */
  DOCKET_RATE_LIMIT: z.coerce.number().min(0).default(50),
  /** Requests a key may make at once above the rate (token bucket size). */
  DOCKET_RATE_BURST: int(100, 1),

  /** Producer the CLI's batch commands (submit, status, watch, results, cancel) call; unset: http://DOCKET_HOST:DOCKET_PORT. */
  DOCKET_URL: optionalString,
});
export type Config = z.infer<typeof ConfigSchema>;

export class ConfigError extends Error {
  readonly code = "invalid_config";
}

export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const parsed = ConfigSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n  ${lines.join("\n  ")}`);
  }
  return parsed.data;
}
