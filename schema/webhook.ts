import { z } from "zod";

/** Event types a webhook delivery carries (Standard Webhooks `type`). Batch types are filled by the batch side. */
export const WEBHOOK_EVENT_TYPES = [
  "job.succeeded",
  "job.failed",
  "job.cancelled",
  "batch.completed",
  "batch.failed",
  "batch.cancelled",
  "batch.expired",
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/**
 * A callback URL, wherever one is given (jobs, batches) and again before each delivery: http or https
 * only. file:, data:, javascript:, gopher: and the like are refused at submit (400 validation_failed).
 */
export const WebhookUrl = z.url({ protocol: /^https?$/, error: "must be an http or https URL" }).max(2048);

export const DELIVERY_STATUSES = ["pending", "delivered", "dead"] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

/** The body POSTed to a callback URL: `{type, timestamp, data}` as Standard Webhooks recommends. */
export const WebhookPayload = z.object({
  type: z.enum(WEBHOOK_EVENT_TYPES),
  timestamp: z.string(),
  /** The job view (GET /v1/jobs/:id) or the batch view at the time of the event. */
  data: z.record(z.string(), z.unknown()),
});
export type WebhookPayload = z.infer<typeof WebhookPayload>;

/** One delivery as GET /v1/jobs/:id/webhooks lists it. */
export const WebhookDeliveryView = z.object({
  /** The webhook-id header: the same on every attempt, so receivers can deduplicate. */
  id: z.string(),
  type: z.enum(WEBHOOK_EVENT_TYPES),
  jobId: z.string().nullable(),
  batchId: z.string().nullable(),
  url: z.string(),
  status: z.enum(DELIVERY_STATUSES),
  attempts: z.number(),
  nextAttemptAt: z.string().nullable(),
  lastStatusCode: z.number().nullable(),
  lastError: z.string().nullable(),
  createdAt: z.string(),
  deliveredAt: z.string().nullable(),
});
export type WebhookDeliveryView = z.infer<typeof WebhookDeliveryView>;

export const WebhookDeliveryList = z.object({ data: z.array(WebhookDeliveryView) });
export type WebhookDeliveryList = z.infer<typeof WebhookDeliveryList>;
