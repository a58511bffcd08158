import { API_ERROR_CODES, type ApiErrorCode } from "../schema/errors.ts";

/**
 * The one error type of the HTTP API: {error: {code, message, field?}} with the code's status. `details` adds
 * fields to the error object (an upload none of whose files was accepted lists them all in `rejected`).
 */
export class ApiError extends Error {
  constructor(
    readonly code: ApiErrorCode,
    message: string,
    readonly field?: string,
    readonly headers: Record<string, string> = {},
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }

  get status(): (typeof API_ERROR_CODES)[ApiErrorCode] {
    return API_ERROR_CODES[this.code];
  }

  toJSON() {
    return { error: { code: this.code, message: this.message, ...(this.field ? { field: this.field } : {}), ...this.details } };
  }
}
