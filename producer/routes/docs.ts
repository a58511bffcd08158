import { renderDocs } from "../docs.ts";
import type { OpenApiDocument } from "../openapi.ts";
import type { Route } from "../route.ts";

/** The OpenAPI document of the routes the app serves, and the reference page rendered from it. */
export interface ApiDocs {
  document: OpenApiDocument;
  html: string;
}

export const apiDocs = (document: OpenApiDocument): ApiDocs => ({ document, html: renderDocs(document) });

export interface DocsRoutesDeps {
  docs: ApiDocs;
}

/** GET /openapi.json and GET /docs, built once from the route declarations and the zod schemas. */
export const docsRoutes: Route<DocsRoutesDeps>[] = [
  {
    method: "get",
    path: "/openapi.json",
    access: "open",
    tag: "operations",
    summary: "This OpenAPI 3.1 document",
    responses: { "200": { description: "OpenAPI document" } },
    handler: (c, { docs }) => c.json(docs.document),
  },
  {
    method: "get",
    path: "/docs",
    access: "open",
    tag: "operations",
    summary: "API reference page (self-contained HTML)",
    responses: { "200": { description: "HTML", contentType: "text/html" } },
    handler: (c, { docs }) => c.html(docs.html),
  },
];
