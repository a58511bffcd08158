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
  /** GGUF path or hf: URI; unset means the generated demo model (noise). */
  DOCKET_MODEL: optionalString,
  DOCKET_FALLBACK_MODEL: optionalString,
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

  // Worker sizing: the reference deployment is a 4-bit model, 50 GB, context 8192, max batch 32.
  DOCKET_WORKER_ID: optionalString,
  /** Sequences (parallel jobs) in the worker's one context. */
  DOCKET_MAX_BATCH: int(32, 1),
  /** Tokens of context per sequence. */
  DOCKET_CONTEXT_SIZE: int(8192, 256),
  DOCKET_GPU_MEMORY: byteSize.default(50e9),
  /** auto, false (CPU only), cuda, vulkan or metal. */
  DOCKET_GPU: z.enum(["auto", "false", "cuda", "vulkan", "metal"]).default("auto"),
  /** llama.cpp math threads; 0 means the measured best for this machine. */
  DOCKET_THREADS: int(0),
  /** Default maxTokens for a job that does not set one. */
  DOCKET_MAX_TOKENS: int(512, 1),
  /** Seconds a SIGTERM'd worker lets in-flight jobs finish. */
  DOCKET_GRACE_SECONDS: int(30, 0),

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
