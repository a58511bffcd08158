import { jetstream } from "@nats-io/jetstream";
import { type ObjectStore, Objm } from "@nats-io/obj";
import type { NatsConnection } from "@nats-io/transport-node";
import type { JobMessage } from "../schema/job.ts";
import { DOCS_BUCKET } from "../schema/subjects.ts";
import { JobFailure } from "./failure.ts";

/** Reads a job's document: inline text, or the claim-checked body in the docket-docs object store. */
export class Documents {
  private store?: Promise<ObjectStore>;

  constructor(private readonly nc: NatsConnection) {}

  async text(job: JobMessage): Promise<string> {
    if (job.input.text !== undefined) return job.input.text;
    if (!job.input.ref) return "";
    this.store ??= new Objm(jetstream(this.nc)).open(DOCS_BUCKET);
    const data = await (await this.store).getBlob(job.input.ref).catch(() => null);
    if (!data)
      throw new JobFailure("document_unavailable", `document ${job.input.ref} is not in the ${DOCS_BUCKET} object store`);
    return new TextDecoder().decode(data);
  }
}
