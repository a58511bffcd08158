import { Hono } from "hono";
import type { Logger } from "../../runtime/log.ts";
import { CreateJobRequest, ListJobsQuery } from "../../schema/api.ts";
import { ownerFilter, ownJob, principalOf, scopedIdempotencyKey } from "../auth/principal.ts";
import type { Canceller } from "../cancel.ts";
import type { DocumentStore } from "../documents.ts";
import { buildJobMessage } from "../job-message.ts";
import type { Publisher } from "../publisher.ts";
import type { Recorder } from "../recorder.ts";
import { type JobStore, toView } from "../stores/jobs.ts";
import { submitJob } from "../submit.ts";
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

  app.post("/", async (c) => {
    const req = await parseJson(c, CreateJobRequest);
    documents.check(req.input.text, "input.text");
    const principal = principalOf(c);
    const key = scopedIdempotencyKey(principal, c.req.header("idempotency-key"));
    const known = key ? store.byIdempotencyKey(key) : undefined;
    if (known) return c.json(toView(known), 200);
    if (req.webhookUrl) await checkWebhookUrl(webhookPolicy, req.webhookUrl);
    const msg = buildJobMessage({
      lane: req.lane,
      task: req.task,
      input: req.input,
      params: req.params,
      customId: req.customId || undefined,
      deadline: req.deadline || undefined,
    });
    const { row, created } = await submitJob({ store, publisher, documents, log }, msg, {
      idempotencyKey: key,
      webhookUrl: req.webhookUrl,
      owner: principal.keyId,
    });
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
