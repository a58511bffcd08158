import type { WebhookDeliveryList } from "../../schema/webhook.ts";
import { ownJob, principalOf } from "../auth/principal.ts";
import { ApiError } from "../errors.ts";
import { pathParam, type Route } from "../route.ts";
import type { JobStore } from "../stores/jobs.ts";
import { type Outbox, toDeliveryView } from "../stores/outbox.ts";
import { type AddressPolicy, ForbiddenAddressError } from "../webhooks/address.ts";

export interface WebhookRoutesDeps {
  store: JobStore;
  outbox: Outbox;
}

export const webhookRoutes: Route<WebhookRoutesDeps>[] = [
  {
    method: "get",
    path: "/v1/jobs/{id}/webhooks",
    access: "key",
    tag: "webhooks",
    summary: "List a job's webhook deliveries: status, attempts, next attempt, last error",
    responses: { "200": "WebhookDeliveryList", "404": "Error" },
    handler: (c, { store, outbox }) => {
      const { id } = ownJob(store, principalOf(c), pathParam(c, "id"));
      return c.json({ data: outbox.forJob(id).map(toDeliveryView) } satisfies WebhookDeliveryList);
    },
  },
];

/** Refuses at submit a callback URL whose host is, or resolves to, a forbidden address. */
export async function checkWebhookUrl(policy: AddressPolicy, url: string, field = "webhookUrl"): Promise<void> {
  try {
    await policy.check(url);
  } catch (err) {
    if (err instanceof ForbiddenAddressError) throw new ApiError("webhook_url_forbidden", `${field}: ${err.message}`, field);
    throw new ApiError("validation_failed", `${field}: host ${new URL(url).hostname} does not resolve`, field);
  }
}
