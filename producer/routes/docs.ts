import { Hono } from "hono";
import { renderDocs } from "../docs.ts";
import { type OpenApiDocument, openApiDocument } from "../openapi.ts";

/** GET /openapi.json and GET /docs, built once from the zod schemas. */
export function docsRoutes(doc: OpenApiDocument = openApiDocument()) {
  const html = renderDocs(doc);
  const app = new Hono();
  app.get("/openapi.json", (c) => c.json(doc));
  app.get("/docs", (c) => c.html(html));
  return app;
}
