import pino, { type Logger } from "pino";

/**
 * Paths that may hold document text, prompts or results. Logs carry ids, codes and counts, never content;
 * redaction is the net under that rule, not the rule itself.
 */
export const REDACT_PATHS = [
  "input", "*.input", "text", "*.text", "result", "*.result", "prompt", "*.prompt",
  "messages", "*.messages", "params.question", "*.params.question", "body", "*.body",
  "authorization", "*.authorization", "req.headers.authorization",
];

export function createLogger(name: string, level = "info"): Logger {
  return pino({ name, level, redact: { paths: REDACT_PATHS, censor: "[redacted]" } });
}

export type { Logger };
