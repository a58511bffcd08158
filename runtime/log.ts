import pino, { type DestinationStream, type Logger } from "pino";

/**
 * Paths that may hold document text, prompts or results. Logs carry ids, codes and counts, never content;
 * redaction is the net under that rule, not the rule itself.
 */
export const REDACT_PATHS = [
  "input",
  "*.input",
  "text",
  "*.text",
  "result",
  "*.result",
  "prompt",
  "*.prompt",
  "messages",
  "*.messages",
  "params.question",
  "*.params.question",
  "body",
  "*.body",
  "authorization",
  "*.authorization",
  "req.headers.authorization",
];

/**
 * JSON lines, or human-readable lines when writing to a terminal (DOCKET_LOG_FORMAT=json|pretty overrides).
 * `destination` (JSON lines) replaces stdout: tests capture logs with it.
 */
export function createLogger(
  name: string,
  level = "info",
  format = process.env.DOCKET_LOG_FORMAT,
  destination?: DestinationStream,
): Logger {
  const options = { name, level, redact: { paths: REDACT_PATHS, censor: "[redacted]" } };
  if (destination) return pino(options, destination);
  const pretty = format ? format === "pretty" : process.stdout.isTTY === true;
  return pino({
    ...options,
    ...(pretty ? { transport: { target: "pino-pretty", options: { colorize: true, ignore: "pid,hostname" } } } : {}),
  });
}

export type { Logger };
