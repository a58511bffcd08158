import { createHash } from "node:crypto";
import type { MiddlewareHandler } from "hono";
import { secureHeaders } from "hono/secure-headers";

/** CSP source for each inline <script> of the pages: their exact text, hashed, so nothing else runs. */
export function inlineScriptHashes(pages: readonly string[]): string[] {
  const hashes = new Set<string>();
  for (const html of pages)
    for (const m of html.matchAll(/<script>([\s\S]*?)<\/script>/g))
      hashes.add(
        `'sha256-${createHash("sha256")
          .update(m[1] ?? "", "utf8")
          .digest("base64")}'`,
      );
  return [...hashes];
}

/**
 * Security headers on every response: nosniff, no framing, no referrer, and a CSP under which the
 * self-contained pages (/dashboard, /docs) still work: their inline scripts by hash, inline styles,
 * same-origin fetch and EventSource; nothing loads from anywhere else. JSON answers carry the same CSP,
 * which is harmless for them. HSTS is left to the TLS-terminating proxy (docket itself speaks HTTP).
 */
export function securityHeaders(pages: readonly string[]): MiddlewareHandler {
  const scripts = inlineScriptHashes(pages);
  return secureHeaders({
    xFrameOptions: "DENY",
    referrerPolicy: "no-referrer",
    strictTransportSecurity: false,
    contentSecurityPolicy: {
      defaultSrc: ["'none'"],
      scriptSrc: scripts.length ? scripts : ["'none'"],
      styleSrc: ["'unsafe-inline'"],
      imgSrc: ["'self'", "data:"],
      connectSrc: ["'self'"],
      baseUri: ["'none'"],
      formAction: ["'none'"],
      frameAncestors: ["'none'"],
    },
  });
}
