import { Hono } from "hono";
import type { Logger } from "../../runtime/log.ts";
import { CreateJobRequest, ListJobsQuery } from "../../schema/api.ts";
import type { JobInput, JobMessage } from "../../schema/job.ts";
import { ownerFilter, ownJob, principalOf, scopedIdempotencyKey } from "../auth/principal.ts";
import type { Canceller } from "../cancel.ts";
import type { DocumentStore } from "../documents.ts";
import { ApiError } from "../errors.ts";
import { newId } from "../ids.ts";
import { type Publisher, QueueFullError } from "../publisher.ts";
import type { Recorder } from "../recorder.ts";
import { type JobStore, toView } from "../stores/jobs.ts";
import { parseJson, parseValue } from "../validate.ts";
import type { AddressPolicy } from "../webhooks/address.ts";
import { jobEventStream } from "./job-events.ts";
import { checkWebhookUrl } from "./webhooks.ts";

export interface JobRoutesDeps {
  store: JobStore;
  publisher: Publisher;
  log: Logger;
  documents: DocumentStore;
  canceller: Canceller;
  recorder: Recorder;
  webhookPolicy: AddressPolicy;
}

export function jobRoutes({ store, publisher, log, documents, canceller, recorder, webhookPolicy }: JobRoutesDeps) {
  const app = new Hono();
  const claim = async (id: string, input: JobInput) => {
    try {
      return await documents.claim(id, input);
    } catch (err) {
      throw new ApiError("unavailable", `could not store the document: ${(err as Error).message}; retry later`);
    }
  };

  app.post("/", async (c) => {
    const req = await parseJson(c, CreateJobRequest);
    documents.check(req.input.text, "input.text");
    const id = newId("job");
    const principal = principalOf(c);
    const key = scopedIdempotencyKey(principal, c.req.header("idempotency-key"));
    const known = key ? store.byIdempotencyKey(key) : undefined;
    if (known) return c.json(toView(known), 200);
    if (req.webhookUrl) await checkWebhookUrl(webhookPolicy, req.webhookUrl);
    const msg: JobMessage = {
      v: 1,
      id,
      lane: req.lane,
      task: req.task,
      input: documents.needsRef(req.input) ? await claim(id, req.input) : req.input,
      params: req.params,
      ...(req.customId ? { customId: req.customId } : {}),
      ...(req.deadline ? { deadline: req.deadline } : {}),
      submittedAt: new Date().toISOString(),
    };
    const { row, created } = store.insert(msg, key, req.webhookUrl, principal.keyId);
    if (!created && msg.input.ref) await documents.remove(msg.input.ref);
    if (created) {
      try {
        await publisher.publish(msg);
      } catch (err) {
        if (err instanceof QueueFullError) {
          store.delete(msg.id);
          if (msg.input.ref) await documents.remove(msg.input.ref);
          throw new ApiError("backpressure", "the job queue is full; retry later", undefined, { "retry-after": "5" });
        }
        // The row stays queued and unpublished: the publisher's sweep republishes it until JetStream acks.
        log.warn({ jobId: msg.id, err: (err as Error).message }, "publish failed; queued for republish");
      }
      log.info({ jobId: msg.id, task: msg.task, lane: msg.lane }, "job submitted");
    }
    return c.json(toView(row), created ? 202 : 200);
  });

  app.get("/", (c) => {
    const q = parseValue(ListJobsQuery, c.req.query());
    const { rows, nextCursor } = store.list(q, ownerFilter(principalOf(c)));
    return c.json({ data: rows.map(toView), nextCursor, hasMore: nextCursor !== null });
  });

  app.post("/:id/cancel", async (c) => {
    const { id } = ownJob(store, principalOf(c), c.req.param("id"));
    return c.json(toView(await canceller.cancelJob(id)), 202);
  });

  app.get("/:id/events", (c) => {
    const { id } = ownJob(store, principalOf(c), c.req.param("id"));
    return jobEventStream(c, id, store, recorder);
  });

  app.get("/:id", (c) => c.json(toView(ownJob(store, principalOf(c), c.req.param("id")))));

  return app;
}
