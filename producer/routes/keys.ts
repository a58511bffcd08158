import type { Logger } from "../../runtime/log.ts";
import { CreateKeyRequest, type KeyList, UpdateKeyRequest } from "../../schema/api.ts";
import { pathParam, type Route } from "../route.ts";
import type { Shares } from "../shares.ts";
import type { KeyStore } from "../stores/api-keys.ts";
import { parseJson } from "../validate.ts";

export interface KeyRoutesDeps {
  keys: KeyStore;
  shares: Pick<Shares, "reweigh">;
  log: Logger;
}

/** /v1/keys, admin only: create (the secret is shown once), list, update (name, quotas, weight), revoke. */
export const keyRoutes: Route<KeyRoutesDeps>[] = [
  {
    method: "post",
    path: "/v1/keys",
    access: "admin",
    tag: "keys",
    summary: "Create an API key (admin key only); the secret is in this answer and nowhere else",
    description:
      "Optional `quotas`: `tokensPerDay` (prompt + completion tokens per UTC day, counting what its queued and running jobs are estimated to use) and `queuedJobs` (jobs queued at once). A submission over a quota is refused whole with 429 `quota_exceeded` and `Retry-After`. Optional `weight` (default 1): the key's share of the default and batch lanes, in tokens, against the other keys with work queued.",
    body: "CreateKeyRequest",
    responses: { "201": "CreatedKey", "400": "Error", "401": "Error", "403": "Error" },
    handler: async (c, { keys, log }) => {
      const { name, quotas, weight } = await parseJson(c, CreateKeyRequest);
      const created = keys.create(name, quotas, weight);
      log.info({ keyId: created.id }, "api key created");
      return c.json(created, 201);
    },
  },
  {
    method: "get",
    path: "/v1/keys",
    access: "admin",
    tag: "keys",
    summary: "List API keys without their secrets (admin key only)",
    responses: { "200": "KeyList", "401": "Error", "403": "Error" },
    handler: (c, { keys }) => c.json({ data: keys.list() } satisfies KeyList),
  },
  {
    method: "patch",
    path: "/v1/keys/{id}",
    access: "admin",
    tag: "keys",
    summary: "Rename an API key or change its quotas or weight (admin key only); a quota set to null is lifted",
    body: "UpdateKeyRequest",
    responses: { "200": "KeyView", "400": "Error", "401": "Error", "403": "Error", "404": "Error" },
    handler: async (c, { keys, shares, log }) => {
      const change = await parseJson(c, UpdateKeyRequest);
      const view = keys.update(pathParam(c, "id"), change);
      // Its queued jobs are served with the new weight from the workers' next look at the consumers.
      if (change.weight !== undefined)
        await shares.reweigh(view.id).catch((err) => {
          log.warn(
            { keyId: view.id, err: (err as Error).message },
            "weight stored; its consumers keep the old one until its next job",
          );
        });
      log.info({ keyId: view.id, quotas: view.quotas, weight: view.weight }, "api key updated");
      return c.json(view);
    },
  },
  {
    method: "delete",
    path: "/v1/keys/{id}",
    access: "admin",
    tag: "keys",
    summary: "Revoke an API key (admin key only); its jobs and batches stay",
    responses: { "200": "KeyView", "401": "Error", "403": "Error", "404": "Error" },
    handler: (c, { keys, log }) => {
      const view = keys.revoke(pathParam(c, "id"));
      log.info({ keyId: view.id }, "api key revoked");
      return c.json(view);
    },
  },
];
