import type { OpenApiDocument } from "./openapi.ts";

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const code = (s: string) => `<code>${esc(s)}</code>`;
const json = (v: unknown) => `<pre>${esc(JSON.stringify(v, null, 2))}</pre>`;
/** `code` spans from Markdown back-ticks in descriptions. */
const prose = (s: string) => esc(s).replace(/`([^`]+)`/g, "<code>$1</code>");

interface OperationObject {
  summary: string;
  description?: string;
  tags: string[];
  parameters?: { name: string; in: string; description?: string }[];
  requestBody?: { content: Record<string, { schema: { $ref: string } }> };
  responses: Record<string, { description: string; content?: Record<string, { schema: { $ref: string } }> }>;
}

const refName = (r: { $ref: string }) => r.$ref.split("/").pop() ?? "";
const link = (r: { $ref: string }) => `<a href="#schema-${esc(refName(r))}">${esc(refName(r))}</a>`;

/**
 * The API reference as one self-contained HTML page (no scripts, fonts or CDN), rendered from the
 * OpenAPI document: it works on an offline host.
 */
export function renderDocs(doc: OpenApiDocument): string {
  const ops: string[] = [];
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, raw] of Object.entries(methods)) {
      const op = raw as OperationObject;
      const body = op.requestBody ? Object.values(op.requestBody.content)[0]?.schema : undefined;
      const params = (op.parameters ?? [])
        .map((p) => `<li>${code(p.name)} (${esc(p.in)})${p.description ? `: ${prose(p.description)}` : ""}</li>`)
        .join("");
      const responses = Object.entries(op.responses)
        .map(([status, r]) => {
          const [type, media] = Object.entries(r.content ?? {})[0] ?? [];
          return `<li>${code(status)} ${prose(r.description)}${media ? ` (${esc(type!)}: ${link(media.schema)})` : ""}</li>`;
        })
        .join("");
      ops.push(`<section class="op" id="${esc(`${method}-${path}`)}">
<h3><span class="m ${esc(method)}">${esc(method.toUpperCase())}</span> ${code(path)}</h3>
<p>${prose(op.summary)}</p>${op.description ? `<p>${prose(op.description)}</p>` : ""}
${params ? `<p>Parameters</p><ul>${params}</ul>` : ""}${body ? `<p>Request body: ${link(body)}</p>` : ""}
<p>Responses</p><ul>${responses}</ul></section>`);
    }
  }
  const hooks = Object.entries(doc.webhooks)
    .map(([type, h]) => `<li>${code(type)}: ${prose(h.post.summary)}</li>`)
    .join("");
  const schemas = Object.entries(doc.components.schemas)
    .map(
      ([name, schema]) =>
        `<section id="schema-${esc(name)}"><details><summary>${esc(name)}</summary>${json(schema)}</details></section>`,
    )
    .join("\n");
  const index = Object.entries(doc.paths)
    .flatMap(([path, methods]) =>
      Object.keys(methods).map((m) => `<li><a href="#${esc(`${m}-${path}`)}">${esc(m.toUpperCase())} ${esc(path)}</a></li>`),
    )
    .join("");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(doc.info.title)} API</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
code,pre{font:13px ui-monospace,monospace}pre{background:#f5f5f5;padding:.75rem;overflow:auto}
.op{border-top:1px solid #ddd;padding:.5rem 0}.m{display:inline-block;min-width:4rem;font-weight:600}
.get{color:#0a6}.post{color:#06c}.delete{color:#c30}summary{cursor:pointer;font-weight:600}
</style></head><body>
<h1>${esc(doc.info.title)} API <small>${esc(doc.info.version)}</small></h1>
<p>${esc(doc.info.description)} Machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI ${esc(doc.openapi)}).</p>
<h2>Routes</h2><ul>${index}</ul>
${ops.join("\n")}
<h2>Webhook events</h2><ul>${hooks}</ul>
<h2>Schemas</h2>
${schemas}
</body></html>`;
}
