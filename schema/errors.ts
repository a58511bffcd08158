/**
 * Stable error codes. Job codes travel in `failed` events and land in GET /v1/jobs/:id as error.code;
 * API codes come back as {error: {code, message, field?}}. Clients branch on these: never rename one.
 */
export const JOB_ERROR_CODES = {
  /** The job message on the wire did not match schema/job.ts. Permanent. */
  invalid_job: { retryable: false },
  /** The params do not fit the task (missing labels for classify, bad JSON schema, ...). Permanent. */
  invalid_params: { retryable: false },
  /** The document does not fit the context and overflow is "fail". Permanent. */
  document_too_long: { retryable: false },
  /** Generation reached maxTokens before a constrained (JSON) result was complete. Permanent. */
  output_truncated: { retryable: false },
  /**
   * The job message does not fit the NATS server's max_payload even with its document and params in the
   * object store, or JetStream refused its size: the producer fails it rather than retry it forever. Permanent.
   */
  job_too_large: { retryable: false },
  /** The referenced document could not be read from the object store. Retryable. */
  document_unavailable: { retryable: true },
  /** The engine failed (context, decode, out of memory). Retryable on another attempt. */
  engine_error: { retryable: true },
  /** The job passed its deadline before it could run. Permanent. */
  deadline_exceeded: { retryable: false },
  /**
   * The job's batch expired (its completion window, OpenAI's `24h`, ended) before the job finished: it was
   * cancelled. Permanent.
   */
  batch_expired: { retryable: false },
  /** The worker gave up after the consumer's max deliveries. */
  max_deliveries: { retryable: false },
  /** Anything else: a bug. Retryable, in case it was transient. */
  internal: { retryable: true },
} as const;
export type JobErrorCode = keyof typeof JOB_ERROR_CODES;

export const API_ERROR_CODES = {
  invalid_json: 400,
  /** The body (JSON or a JSONL upload) holds bytes that are not UTF-8. */
  invalid_utf8: 400,
  validation_failed: 400,
  /** A multipart/form-data body that cannot be parsed (wrong or missing boundary, CR/LF in a part's header). */
  invalid_multipart: 400,
  /** webhookUrl resolves to an address that is not public unicast: private, loopback, link-local, metadata, IPv6 that embeds IPv4 (see DOCKET_WEBHOOK_ALLOW). */
  webhook_url_forbidden: 400,
  not_found: 404,
  /** No document with that id, or one another API key uploaded (POST /v1/documents). */
  document_not_found: 404,
  /** A chat completion names a model no live worker serves (GET /openai/v1/models lists those that are). */
  model_not_served: 404,
  /** The request conflicts with the resource's state (cancelling a finished job). */
  conflict: 409,
  payload_too_large: 413,
  /** The body's Content-Type is not one the route reads (JSON routes: application/json only). */
  unsupported_media_type: 415,
  /** An Idempotency-Key reused with another request body (IETF Idempotency-Key draft): use a new key. */
  idempotency_key_reused: 422,
  /** An uploaded PDF has more pages than DOCKET_EXTRACT_MAX_PAGES, or more scanned pages than DOCKET_OCR_MAX_PAGES. */
  too_many_pages: 413,
  /** An uploaded DOCX inflates past DOCKET_EXTRACT_MAX_UNCOMPRESSED_BYTES (by its zip directory, or by its data). */
  uncompressed_too_large: 413,
  /** An uploaded file's type is not one docket reads (txt, md, pdf, docx, png, jpeg, tiff). */
  unsupported_file_type: 400,
  /** An uploaded file could not be parsed as what it claims to be (a corrupt PDF, DOCX or image). */
  unreadable_file: 422,
  /** An uploaded file holds no text (an empty .txt, a PDF of blank pages). */
  empty_document: 422,
  /** An uploaded PDF without a text layer, or an image, while OCR is off (DOCKET_OCR=false). */
  scanned_document: 422,
  /** Extracting an uploaded file's text took longer than DOCKET_EXTRACT_TIMEOUT_MS; its thread was stopped. */
  extraction_timeout: 422,
  /** Extracting an uploaded file's text needed more than DOCKET_EXTRACT_MEMORY_BYTES; its thread was stopped. */
  extraction_out_of_memory: 422,
  unauthorized: 401,
  forbidden: 403,
  /** A state-changing request from a page on another site (its Origin is not this server nor DOCKET_PUBLIC_URL). */
  origin_not_allowed: 403,
  /** The Host header names a host this server does not answer to (DNS rebinding); see DOCKET_PUBLIC_URL. */
  host_not_allowed: 403,
  backpressure: 429,
  /** The key (or client address) made more requests than DOCKET_RATE_LIMIT allows; see Retry-After. */
  rate_limited: 429,
  /** The submission would take the key past a quota of its own (tokens per day, queued jobs); see Retry-After. */
  quota_exceeded: 429,
  unavailable: 503,
  /** A synchronous call (chat completions) waited longer than its limit. */
  timeout: 504,
  internal: 500,
} as const;
export type ApiErrorCode = keyof typeof API_ERROR_CODES;
