import { createReadStream, createWriteStream } from "node:fs";
import { rename } from "node:fs/promises";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { jetstream } from "@nats-io/jetstream";
import { type ObjectStore, Objm } from "@nats-io/obj";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "../runtime/log.ts";
import { PREFIX_BUCKET } from "../schema/subjects.ts";

/**
 * Document-prefix checkpoints shared between workers through the NATS object store (issue 10): a worker
 * that saved a prefix's state uploads it in the background, and any worker that later needs the prefix
 * downloads it instead of evaluating the document. A worker never waits for another's evaluation: two
 * workers that need a new document at the same moment both evaluate it (measured: waiting left one
 * worker idle and was slower, docs/prefix-reuse.md).
 * Objects are named `<model fingerprint>.<prefix key>`: a state is only ever loaded into the model it was
 * taken from. Every failure here falls back to evaluating locally.
 */
export class SharedPrefixes {
  private store?: Promise<ObjectStore>;
  private warned = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly fingerprint: string,
    private readonly log: Logger,
  ) {}

  private name(key: string): string {
    return `${this.fingerprint}.${key}`;
  }

  private open(): Promise<ObjectStore> {
    this.store ??= new Objm(jetstream(this.nc)).open(PREFIX_BUCKET);
    return this.store;
  }

  private fail(what: string, err: unknown): void {
    if (!this.warned)
      this.log.warn({ err: (err as Error).message }, `shared prefix checkpoints: ${what} failed; evaluating locally`);
    this.warned = true;
  }

  /** Downloads the prefix's state into `file`; false when no worker shared it (or the download failed). */
  async fetch(key: string, file: string): Promise<boolean> {
    try {
      const found = await (await this.open()).get(this.name(key));
      if (!found) return false;
      const partial = `${file}.partial`;
      await pipeline(Readable.fromWeb(found.data as WebReadableStream<Uint8Array>), createWriteStream(partial));
      if (await found.error) return false;
      await rename(partial, file);
      return true;
    } catch (err) {
      this.fail("download", err);
      return false;
    }
  }

  /** Uploads a saved state for the other workers, unless one of them already did. */
  async publish(key: string, file: string): Promise<void> {
    try {
      const store = await this.open();
      if (await store.info(this.name(key))) return;
      const body = Readable.toWeb(createReadStream(file)) as unknown as ReadableStream<Uint8Array>;
      await store.put({ name: this.name(key) }, body);
    } catch (err) {
      this.fail("upload", err);
    }
  }
}
