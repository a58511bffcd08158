import type { Logger } from "../../runtime/log.ts";
import { CreateKeyRequest, type KeyList } from "../../schema/api.ts";
import { pathParam, type Route } from "../route.ts";
import type { KeyStore } from "../stores/api-keys.ts";
import { parseJson } from "../validate.ts";

export interface KeyRoutesDeps {
  keys: KeyStore;
  log: Logger;
}

/** /v1/keys, admin only: create (the secret is shown once), list, revoke. */
export const keyRoutes: Route<KeyRoutesDeps>[] = [
  {
    method: "post",
    path: "/v1/keys",
    access: "admin",
    tag: "keys",
    summary: "Create an API key (admin key only); the secret is in this answer and nowhere else",
    body: "CreateKeyRequest",
    responses: { "201": "CreatedKey", "400": "Error", "401": "Error", "403": "Error" },
    handler: async (c, { keys, log }) => {
      const { name } = await parseJson(c, CreateKeyRequest);
      const created = keys.create(name);
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
