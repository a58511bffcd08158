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
 * A download progress bar on stderr: redrawn in place on a terminal, one line per 10% otherwise (logs, CI).
 */
export function progressBar(label: string, stream: NodeJS.WriteStream = process.stderr) {
  const started = Date.now();
  let lastDecile = -1;
  return {
    update(done: number, total: number) {
      const ratio = total > 0 ? Math.min(1, done / total) : 0;
      const mb = (n: number) => (n / 1e6).toFixed(1);
      const speed = done / 1e6 / Math.max(0.001, (Date.now() - started) / 1000);
      const text = `${label} ${(ratio * 100).toFixed(0).padStart(3)}% ${mb(done)}/${mb(total)} MB ${speed.toFixed(1)} MB/s`;
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
