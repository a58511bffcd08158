import { Hono } from "hono";
import type { Logger } from "../../runtime/log.ts";
import { CreateKeyRequest, type KeyList } from "../../schema/api.ts";
import type { KeyStore } from "../stores/api-keys.ts";
import { parseJson } from "../validate.ts";

export interface KeyRoutesDeps {
  keys: KeyStore;
  log: Logger;
}

/** /v1/keys (admin only, see auth/authenticate.ts): create (the secret is shown once), list, revoke. */
export function keyRoutes({ keys, log }: KeyRoutesDeps) {
  const app = new Hono();
  app.post("/", async (c) => {
    const { name } = await parseJson(c, CreateKeyRequest);
    const created = keys.create(name);
    log.info({ keyId: created.id }, "api key created");
    return c.json(created, 201);
  });
  app.get("/", (c) => c.json({ data: keys.list() } satisfies KeyList));
  app.delete("/:id", (c) => {
    const view = keys.revoke(c.req.param("id"));
    log.info({ keyId: view.id }, "api key revoked");
    return c.json(view);
  });
  return app;
}
