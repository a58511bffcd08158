import { jetstream } from "@nats-io/jetstream";
import { type ObjectStore, Objm } from "@nats-io/obj";
import type { NatsConnection } from "@nats-io/transport-node";
import { type JobMessage, JobParams } from "../schema/job.ts";
import { DOCS_BUCKET } from "../schema/subjects.ts";
import { JobFailure } from "./failure.ts";

/**
 * Reads what a job message carries by claim check in the docket-docs object store (producer/documents.ts
 * puts it there when it does not fit inline): its document (`input.ref`) and its params (`paramsRef`).
 */
export class Documents {
  private store?: Promise<ObjectStore>;

  constructor(private readonly nc: NatsConnection) {}

  async text(job: JobMessage): Promise<string> {
    if (job.input.text !== undefined) return job.input.text;
    if (!job.input.ref) return "";
    return new TextDecoder().decode(await this.read(job.input.ref, "document"));
  }

  /** The job with its params in place: as they came, or read back from the object store. */
  async withParams(job: JobMessage): Promise<JobMessage> {
    if (!job.paramsRef) return job;
    let raw: unknown;
    try {
      raw = JSON.parse(new TextDecoder().decode(await this.read(job.paramsRef, "params")));
    } catch (err) {
      if (err instanceof JobFailure) throw err;
      raw = undefined;
    }
    const params = JobParams.safeParse(raw);
    if (!params.success)
      throw new JobFailure("invalid_job", `params ${job.paramsRef} in the object store are not valid job params`);
    return { ...job, params: params.data };
  }

  private async read(name: string, what: string): Promise<Uint8Array> {
    this.store ??= new Objm(jetstream(this.nc)).open(DOCS_BUCKET);
    const data = await (await this.store).getBlob(name).catch(() => null);
    if (!data) throw new JobFailure("document_unavailable", `${what} ${name} is not in the ${DOCS_BUCKET} object store`);
    return data;
  }
}
