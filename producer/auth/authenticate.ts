import type { MiddlewareHandler } from "hono";
import { ApiError } from "../errors.ts";
import type { KeyStore } from "../stores/api-keys.ts";
import type { DashboardSessions } from "./session.ts";

/** Who may call a route (declared on the route): anyone, any valid key, or the admin key only. */
export type Access = "open" | "key" | "admin";

/**
 * `Authorization: Bearer <key>`. Nothing else: HTTP Basic (the dashboard's old sign-in) is not read, because a
 * browser keeps Basic credentials and attaches them to every request to the origin, one another site starts
 * included.
 */
function presentedKey(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const [scheme, value] = header.trim().split(/\s+/, 2);
  return value && scheme?.toLowerCase() === "bearer" ? value : undefined;
}

/**
 * Sets the request's principal. Auth off (no DOCKET_API_KEY): everyone is admin. Otherwise 401
 * `unauthorized` without a valid key and 403 `forbidden` for a non-admin key on an admin route. A `browser`
 * route (the dashboard's, all GET) also takes the dashboard's session cookie (DashboardSessions), which only the
 * admin key can get.
 */
export function authenticate(keys: KeyStore, access: Access, browser?: { sessions: DashboardSessions }): MiddlewareHandler {
  return async (c, next) => {
    if (!keys.enabled || access === "open") {
      c.set("principal", { keyId: null, admin: true });
      return next();
    }
    if (browser && c.req.method === "GET" && browser.sessions.valid(c)) {
      c.set("principal", { keyId: null, admin: true });
      return next();
    }
    const secret = presentedKey(c.req.header("authorization"));
    const principal = secret ? keys.verify(secret) : undefined;
    if (!principal) {
      throw new ApiError(
        "unauthorized",
        secret
          ? "the API key is not valid (or was revoked)"
          : browser
            ? "sign in on /dashboard with the admin key"
            : "send an API key: Authorization: Bearer <key>",
        undefined,
        { "www-authenticate": 'Bearer realm="docket"' },
      );
    }
    if (access === "admin" && !principal.admin)
      throw new ApiError("forbidden", `${c.req.path} needs the admin key (DOCKET_API_KEY)`);
    c.set("principal", principal);
    return next();
  };
}
