import { JOB_ERROR_CODES, type JobErrorCode } from "../schema/errors.ts";
import type { JobError } from "../schema/event.ts";

/** A job failure with a stable code; whether it is retried follows from the code. */
export class JobFailure extends Error {
  constructor(
    readonly code: JobErrorCode,
    message: string,
  ) {
    super(message);
  }

  get retryable(): boolean {
    return JOB_ERROR_CODES[this.code].retryable;
  }

  static from(err: unknown): JobFailure {
    if (err instanceof JobFailure) return err;
    const message = err instanceof Error ? err.message : String(err);
    return new JobFailure("engine_error", `the engine failed: ${message}`);
  }

  toWire(): JobError {
    return { code: this.code, message: this.message, retryable: this.retryable };
  }
}
