import type { MiddlewareHandler } from "hono";
import { ApiError } from "../errors.ts";
import type { KeyStore } from "../stores/api-keys.ts";

/** Who may call a route (declared on the route): anyone, any valid key, or the admin key only. */
export type Access = "open" | "key" | "admin";

/** `Authorization: Bearer <key>`, or Basic with the key as password (browsers: the dashboard). */
function presentedKey(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const [scheme, value] = header.trim().split(/\s+/, 2);
  if (!value) return undefined;
  if (scheme?.toLowerCase() === "bearer") return value;
  if (scheme?.toLowerCase() === "basic") {
    const decoded = Buffer.from(value, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    return colon === -1 ? undefined : decoded.slice(colon + 1);
  }
  return undefined;
}

/**
 * Sets the request's principal. Auth off (no DOCKET_API_KEY): everyone is admin. Otherwise 401
 * `unauthorized` without a valid key and 403 `forbidden` for a non-admin key on an admin route. A
 * `browser` route (the dashboard) answers 401 with a Basic challenge so a browser asks for the key
 * (user name ignored).
 */
export function authenticate(keys: KeyStore, access: Access, browser = false): MiddlewareHandler {
  return async (c, next) => {
    if (!keys.enabled || access === "open") {
      c.set("principal", { keyId: null, admin: true });
      return next();
    }
    const secret = presentedKey(c.req.header("authorization"));
    const principal = secret ? keys.verify(secret) : undefined;
    if (!principal) {
      const challenge = browser ? 'Basic realm="docket", charset="UTF-8"' : 'Bearer realm="docket"';
      throw new ApiError(
        "unauthorized",
        secret ? "the API key is not valid (or was revoked)" : "send an API key: Authorization: Bearer <key>",
        undefined,
        { "www-authenticate": challenge },
      );
    }
    if (access === "admin" && !principal.admin)
      throw new ApiError("forbidden", `${c.req.path} needs the admin key (DOCKET_API_KEY)`);
    c.set("principal", principal);
    return next();
  };
}
