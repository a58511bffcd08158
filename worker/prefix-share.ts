import { createReadStream, createWriteStream } from "node:fs";
import { rename } from "node:fs/promises";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { jetstream } from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import { type ObjectStore, Objm } from "@nats-io/obj";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "../runtime/log.ts";
import { PREFIX_BUCKET, PREFIX_CLAIMS_BUCKET } from "../schema/subjects.ts";

/** How often a worker waiting on another's build checks that the claim still stands (the object's arrival is pushed). */
const CLAIM_CHECK_MS = 1_000;

/**
 * Document-prefix checkpoints shared between workers through the NATS object store (issue 10): the first
 * worker that needs a prefix claims it (a key in a KV bucket whose entries expire, so a dead worker's claim
 * lapses), evaluates it, and uploads the state; another worker that needs it meanwhile waits for the upload
 * instead of evaluating the same document again, and any worker later downloads it instead of evaluating.
 * Objects are named `<model fingerprint>.<prefix key>`: a state is only ever loaded into the model it was
 * taken from. Every failure here falls back to evaluating locally.
 */
export class SharedPrefixes {
  private store?: Promise<ObjectStore>;
  private claims?: Promise<KV>;
  private warned = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly fingerprint: string,
    private readonly owner: string,
    private readonly log: Logger,
  ) {}

  private name(key: string): string {
    return `${this.fingerprint}.${key}`;
  }

  private open(): Promise<ObjectStore> {
    this.store ??= new Objm(jetstream(this.nc)).open(PREFIX_BUCKET);
    return this.store;
  }

  private openClaims(): Promise<KV> {
    this.claims ??= new Kvm(this.nc).open(PREFIX_CLAIMS_BUCKET);
    return this.claims;
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

  /** True when this worker now builds the prefix for everyone; false when another worker already does. */
  async claim(key: string): Promise<boolean> {
    try {
      await (await this.openClaims()).create(this.name(key), this.owner);
      return true;
    } catch (err) {
      // create() refuses an existing key: someone else builds it. Anything else: build it ourselves.
      if ((await this.claimed(key)) !== undefined) return false;
      this.fail("claim", err);
      return true;
    }
  }

  private async claimed(key: string): Promise<string | undefined> {
    const entry = await (await this.openClaims()).get(this.name(key)).catch(() => null);
    return entry?.operation === "PUT" ? entry.string() : undefined;
  }

  /** Resolves once the claimed prefix is uploaded, or its claim is gone (released or lapsed), or after `maxMs`. */
  async waitFor(key: string, maxMs: number): Promise<void> {
    const name = this.name(key);
    let watch: Awaited<ReturnType<ObjectStore["watch"]>> | undefined;
    let timer: NodeJS.Timeout | undefined;
    try {
      const store = await this.open();
      watch = await store.watch({ includeHistory: false, ignoreDeletes: true });
      const uploaded = (async () => {
        for await (const info of watch ?? []) if (info?.name === name) return;
      })();
      const claimGone = new Promise<void>((resolve) => {
        const started = Date.now();
        const check = async () => {
          if (Date.now() - started > maxMs || (await this.claimed(key)) === undefined) return resolve();
          timer = setTimeout(check, CLAIM_CHECK_MS);
        };
        timer = setTimeout(check, CLAIM_CHECK_MS);
      });
      // The upload may have finished before the watch started.
      if (await store.info(name)) return;
      await Promise.race([uploaded, claimGone]);
    } catch (err) {
      this.fail("wait", err);
    } finally {
      clearTimeout(timer);
      watch?.stop();
    }
  }

  /** Uploads a saved state for the other workers, then releases the claim. */
  async publish(key: string, file: string): Promise<void> {
    try {
      const body = Readable.toWeb(createReadStream(file)) as unknown as ReadableStream<Uint8Array>;
      await (await this.open()).put({ name: this.name(key) }, body);
    } catch (err) {
      this.fail("upload", err);
    } finally {
      await this.release(key);
    }
  }

  async release(key: string): Promise<void> {
    await (await this.openClaims()).delete(this.name(key)).catch(() => undefined);
  }
}
