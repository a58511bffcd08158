import { Hono } from "hono";
import type { Logger } from "../../ops/log.ts";
import { CreateJobRequest } from "../../schema/api.ts";
import type { JobMessage } from "../../schema/job.ts";
import { ApiError } from "../errors.ts";
import { newId } from "../ids.ts";
import { type JobStore, toView } from "../jobs.ts";
import { type Publisher, QueueFullError } from "../publisher.ts";
import { parseJson } from "../validate.ts";
import type { AddressPolicy } from "../webhooks/address.ts";
import { checkWebhookUrl } from "./webhooks.ts";

export interface JobRoutesDeps {
  store: JobStore;
  publisher: Publisher;
  log: Logger;
  inlineLimit: number;
  webhookPolicy: AddressPolicy;
}

export function jobRoutes({ store, publisher, log, inlineLimit, webhookPolicy }: JobRoutesDeps) {
  const app = new Hono();

  app.post("/", async (c) => {
    const req = await parseJson(c, CreateJobRequest);
    if (req.input.text && Buffer.byteLength(req.input.text) > inlineLimit) {
      throw new ApiError(
        "payload_too_large",
        `input.text is ${Buffer.byteLength(req.input.text)} bytes; documents above ${inlineLimit} bytes are not accepted inline`,
        "input.text",
      );
    }
    if (req.webhookUrl) await checkWebhookUrl(webhookPolicy, req.webhookUrl);
    const msg: JobMessage = {
      v: 1,
      id: newId("job"),
      lane: req.lane,
      task: req.task,
      input: req.input,
      params: req.params,
      ...(req.customId ? { customId: req.customId } : {}),
      ...(req.deadline ? { deadline: req.deadline } : {}),
      submittedAt: new Date().toISOString(),
    };
    const { row, created } = store.insert(msg, c.req.header("idempotency-key"), req.webhookUrl);
    if (created) {
      try {
        await publisher.publish(msg);
      } catch (err) {
        if (err instanceof QueueFullError) {
          store.delete(msg.id);
          throw new ApiError("backpressure", "the job queue is full; retry later", undefined, { "retry-after": "5" });
        }
        // The row stays queued and unpublished: the publisher's sweep republishes it until JetStream acks.
        log.warn({ jobId: msg.id, err: (err as Error).message }, "publish failed; queued for republish");
      }
      log.info({ jobId: msg.id, task: msg.task, lane: msg.lane }, "job submitted");
    }
    return c.json(toView(row), created ? 202 : 200);
  });

  app.get("/:id", (c) => {
    const row = store.get(c.req.param("id"));
    if (!row) throw new ApiError("not_found", `no job with id ${c.req.param("id")}`);
    return c.json(toView(row));
  });

  return app;
}
