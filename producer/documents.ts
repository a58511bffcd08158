import { jetstream } from "@nats-io/jetstream";
import { type ObjectStore, Objm } from "@nats-io/obj";
import type { NatsConnection } from "@nats-io/transport-node";
import type { JobInput } from "../schema/job.ts";
import { DOCS_BUCKET } from "../schema/subjects.ts";
import { ApiError } from "./errors.ts";

export interface DocumentLimits {
  /** Bodies above this many bytes go to the object store (claim check). */
  inlineLimit: number;
  /** Largest document accepted. */
  maxDocument: number;
}

/**
 * Puts a job's document where workers can read it: inline in the job message when small, otherwise in the
 * docket-docs object store under the job id, the message carrying `input.ref` (worker/documents.ts reads it).
 */
export class DocumentStore {
  private store?: Promise<ObjectStore>;

  constructor(
    private readonly nc: NatsConnection,
    readonly limits: DocumentLimits,
  ) {}

  /** Throws 413 payload_too_large naming the limit when `text` is above DOCKET_MAX_DOCUMENT_BYTES. */
  check(text: string | undefined, field: string): number {
    const bytes = text === undefined ? 0 : Buffer.byteLength(text);
    if (bytes > this.limits.maxDocument)
      throw new ApiError(
        "payload_too_large",
        `${field} is ${bytes} bytes; the largest document accepted is ${this.limits.maxDocument} bytes (DOCKET_MAX_DOCUMENT_BYTES)`,
        field,
      );
    return bytes;
  }

  needsRef(input: JobInput): boolean {
    return input.text !== undefined && Buffer.byteLength(input.text) > this.limits.inlineLimit;
  }

  /** Stores the text of a large input and returns the input with `ref` in place of `text`. */
  async claim(jobId: string, input: JobInput): Promise<JobInput> {
    if (!this.needsRef(input)) return input;
    const { text, ...rest } = input;
    await (await this.open()).putBlob({ name: jobId }, new TextEncoder().encode(text));
    return { ...rest, ref: jobId };
  }

  async remove(name: string): Promise<void> {
    await (await this.open()).delete(name).catch(() => undefined);
  }

  private open(): Promise<ObjectStore> {
    this.store ??= new Objm(jetstream(this.nc)).open(DOCS_BUCKET);
    return this.store;
  }
}
