import { jetstream } from "@nats-io/jetstream";
import { type ObjectStore, Objm } from "@nats-io/obj";
import type { NatsConnection } from "@nats-io/transport-node";
import type { JobInput, JobMessage } from "../schema/job.ts";
import { DOCS_BUCKET } from "../schema/subjects.ts";
import type { DocumentRow } from "../schema/tables.ts";
import { ApiError } from "./errors.ts";

export interface DocumentLimits {
  /** Documents whose JSON-escaped text is above this many bytes go to the object store (claim check). */
  inlineLimit: number;
  /** Largest document accepted. */
  maxDocument: number;
}

/**
 * Room kept free under the server's max_payload for what the publish adds to the JSON (the Nats-Msg-Id
 * header is ~50 bytes: the NATS limit counts headers and payload together).
 */
const HEADROOM_BYTES = 1024;
/** nats-server's default max_payload, for the moment before the connection has the server's info. */
const DEFAULT_MAX_PAYLOAD = 1024 * 1024;

/** A job message the server will never take: over max_payload even with its document and params in the object store. */
export class MessageTooLargeError extends Error {
  readonly code = "job_too_large";
}

/** Bytes of a value as it goes on the wire: JSON, escapes included (one U+0000 is six bytes there). */
const jsonBytes = (value: unknown) => Buffer.byteLength(JSON.stringify(value));

/** The object holding the params of a job whose message would not fit with them inline. */
const paramsName = (jobId: string) => `${jobId}.params`;

/**
 * Puts what a job message carries where workers can read it, within what NATS takes: inline when it fits,
 * otherwise in the docket-docs object store with the message naming it (claim check). The document is
 * claimed at submit (`input.ref`, the row keeps the ref); params are claimed on each publish (`paramsRef`,
 * the row keeps them whole, for the API). worker/documents.ts reads both back. Every size is the
 * serialized size, measured against the max_payload of the server the connection is on.
 * Uploaded documents (POST /v1/documents) live there too, under the document id, shared by every job that
 * names one: only deleting the document removes that object.
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

  /** Largest job message the connected server takes: its max_payload (from the connection's server info), less headroom. */
  maxMessageBytes(): number {
    return (this.nc.info?.max_payload ?? DEFAULT_MAX_PAYLOAD) - HEADROOM_BYTES;
  }

  /**
   * Throws 413 payload_too_large when the message would not fit even with its document and params in the
   * object store (only ids, title, mime and customId left inline): call before anything is written.
   */
  checkFits(msg: JobMessage, what = "the job"): void {
    const smallest = { ...msg, input: { ...msg.input, text: undefined, ref: msg.id }, params: {}, paramsRef: paramsName(msg.id) };
    const bytes = jsonBytes(smallest);
    const max = this.maxMessageBytes();
    if (bytes > max)
      throw new ApiError(
        "payload_too_large",
        `${what}'s message would be ${bytes} bytes even with its document and params in the object store; the NATS server takes ${max} (max_payload less ${HEADROOM_BYTES} bytes of headroom): shorten title, mime or customId`,
      );
  }

  /**
   * True when the document should travel by claim check: its JSON-escaped text is above the inline limit,
   * or the message would not fit max_payload with the text inline even with its params claimed.
   */
  needsRef(msg: JobMessage): boolean {
    const { text } = msg.input;
    if (text === undefined) return false;
    // Escaping only adds bytes: past the limit unescaped, it is past it escaped.
    if (Buffer.byteLength(text) > this.limits.inlineLimit || jsonBytes(text) > this.limits.inlineLimit) return true;
    return jsonBytes({ ...msg, params: {}, paramsRef: paramsName(msg.id) }) > this.maxMessageBytes();
  }

  /** Stores the text of a large input and returns the input with `ref` in place of `text`. */
  async claim(jobId: string, input: JobInput): Promise<JobInput> {
    if (input.text === undefined) return input;
    const { text, ...rest } = input;
    await (await this.open()).putBlob({ name: jobId }, new TextEncoder().encode(text));
    return { ...rest, ref: jobId };
  }

  /**
   * The job message as it goes on the wire: its JSON, with the params in the object store when the message
   * would be over max_payload with them (the same name each time, so a republish overwrites, never adds).
   * Throws MessageTooLargeError when even that does not fit.
   */
  async wire(msg: JobMessage): Promise<string> {
    const max = this.maxMessageBytes();
    let data = JSON.stringify(msg);
    if (Buffer.byteLength(data) <= max) return data;
    if (!msg.paramsRef && Object.keys(msg.params).length > 0) {
      const name = paramsName(msg.id);
      await (await this.open()).putBlob({ name }, new TextEncoder().encode(JSON.stringify(msg.params)));
      data = JSON.stringify({ ...msg, params: {}, paramsRef: name });
      if (Buffer.byteLength(data) <= max) return data;
    }
    throw new MessageTooLargeError(
      `the job message is ${Buffer.byteLength(data)} bytes with its params in the object store; the NATS server takes ${max} (max_payload less ${HEADROOM_BYTES} bytes of headroom)`,
    );
  }

  async remove(name: string): Promise<void> {
    await (await this.open()).delete(name).catch(() => undefined);
  }

  /**
   * Removes what a job that will not be kept put in the object store: its claim-checked document (named after
   * the job) and its params, if any. An uploaded document's object (`ref` = the document id) is
   * shared by other jobs and stays.
   */
  async discard(msg: JobMessage): Promise<void> {
    await Promise.all([msg.input.ref === msg.id ? this.remove(msg.id) : undefined, this.remove(paramsName(msg.id))]);
  }

  /** Stores an uploaded document's text under `name`; it stays until deleteObject(name). */
  async put(name: string, text: string): Promise<void> {
    await (await this.open()).putBlob({ name }, new TextEncoder().encode(text));
  }

  /** An uploaded document's text; undefined when its object is gone. */
  async read(name: string): Promise<string | undefined> {
    const data = await (await this.open()).getBlob(name);
    return data ? new TextDecoder().decode(data) : undefined;
  }

  /** Deletes an uploaded document's object (one already gone is fine); a failing store throws. */
  async deleteObject(name: string): Promise<void> {
    await (await this.open()).delete(name);
  }

  private open(): Promise<ObjectStore> {
    this.store ??= new Objm(jetstream(this.nc)).open(DOCS_BUCKET);
    return this.store;
  }
}

/**
 * The input of a job on an uploaded document: the object to read, the document's id and content hash, and its
 * title and mime unless the job gives its own.
 */
export function documentInput(doc: DocumentRow, own: { title?: string; mime?: string } = {}): JobInput {
  const title = own.title ?? doc.title ?? undefined;
  const mime = own.mime ?? doc.mime ?? undefined;
  return {
    ref: doc.object,
    documentId: doc.id,
    sha256: doc.sha256,
    ...(title !== undefined ? { title } : {}),
    ...(mime !== undefined ? { mime } : {}),
  };
}
