/** Exit codes a shell script can branch on. */
export const EXIT = {
  ok: 0,
  /** Anything else that went wrong (a file could not be read or written, ...). */
  failure: 1,
  /** Unknown command or option, missing or invalid argument. */
  usage: 2,
  /** The server could not be reached, or answered with an error other than 404. */
  http: 3,
  /** `watch`: the batch ended failed, cancelled or expired. */
  batchEnded: 4,
  /** The batch, job or document does not exist (HTTP 404). */
  notFound: 5,
  /** `model plan`: the requested batch × context does not run as asked in one of the memory sizes. */
  doesNotFit: 6,
} as const;

/** An error the CLI prints as one line (no stack) and exits with. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/**
 * A progress bar on stderr (bytes by default; `describe` words other units): redrawn in place on a terminal, one line per 10% otherwise (logs, CI).
 */
export function progressBar(
  label: string,
  stream: NodeJS.WriteStream = process.stderr,
  describe: (done: number, total: number, seconds: number) => string = (done, total, seconds) => {
    const mb = (n: number) => (n / 1e6).toFixed(1);
    return `${mb(done)}/${mb(total)} MB ${(done / 1e6 / Math.max(0.001, seconds)).toFixed(1)} MB/s`;
  },
) {
  const started = Date.now();
  let lastDecile = -1;
  return {
    update(done: number, total: number) {
      const ratio = total > 0 ? Math.min(1, done / total) : 0;
      const text = `${label} ${(ratio * 100).toFixed(0).padStart(3)}% ${describe(done, total, (Date.now() - started) / 1000)}`;
      if (stream.isTTY) {
        const width = 30;
        const filled = Math.round(ratio * width);
        stream.write(`\r[${"#".repeat(filled)}${".".repeat(width - filled)}] ${text}`);
      } else {
        const decile = Math.floor(ratio * 10);
        if (decile !== lastDecile) stream.write(`${text}\n`);
        lastDecile = decile;
      }
    },
    done() {
      if (stream.isTTY) stream.write("\n");
    },
  };
}
