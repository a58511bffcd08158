import { Hono } from "hono";
import type { WebhookDeliveryList } from "../../schema/webhook.ts";
import { ownJob, principalOf } from "../auth/principal.ts";
import { ApiError } from "../errors.ts";
import type { JobStore } from "../stores/jobs.ts";
import { type Outbox, toDeliveryView } from "../stores/outbox.ts";
import { type AddressPolicy, ForbiddenAddressError } from "../webhooks/address.ts";

export interface WebhookRoutesDeps {
  store: JobStore;
  outbox: Outbox;
}

/** GET /v1/jobs/:id/webhooks: the job's deliveries with their status, attempts and last error. */
export function webhookRoutes({ store, outbox }: WebhookRoutesDeps) {
  const app = new Hono();
  app.get("/:id/webhooks", (c) => {
    const { id } = ownJob(store, principalOf(c), c.req.param("id"));
    return c.json({ data: outbox.forJob(id).map(toDeliveryView) } satisfies WebhookDeliveryList);
  });
  return app;
}

/** Refuses at submit a callback URL whose host is, or resolves to, a forbidden address. */
export async function checkWebhookUrl(policy: AddressPolicy, url: string, field = "webhookUrl"): Promise<void> {
  try {
    await policy.check(url);
  } catch (err) {
    if (err instanceof ForbiddenAddressError) throw new ApiError("webhook_url_forbidden", `${field}: ${err.message}`, field);
    throw new ApiError("validation_failed", `${field}: host ${new URL(url).hostname} does not resolve`, field);
  }
}
