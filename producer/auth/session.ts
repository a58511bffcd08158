import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { Context } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";

/** The dashboard's session cookie. */
export const SESSION_COOKIE = "docket_session";
/** The only paths the cookie is sent to: the dashboard's own routes, every one of them read-only. */
const SESSION_PATH = "/dashboard";

/**
 * The dashboard's sign-in: the admin key, posted once, exchanged for a cookie that is HttpOnly (no script reads
 * it), SameSite=Strict (no request started by another site carries it) and Path=/dashboard (it authorizes the
 * dashboard's GET routes and nothing else: no /v1 route, nothing that changes state, so there is nothing for a
 * forged request to do with it and no CSRF token to carry). It replaced HTTP Basic, whose credentials a browser
 * attaches to every request to the origin, a cross-site form post included.
 * A session is `<expiry ms>.<HMAC-SHA256 of it>` under a key made at start-up: a restart (or a new admin key,
 * which needs one) signs everyone out; nothing is stored.
 */
export class DashboardSessions {
  private readonly secret = randomBytes(32);

  constructor(readonly ttlSeconds = 12 * 60 * 60) {}

  private sign(expires: number): Buffer {
    return createHmac("sha256", this.secret).update(String(expires)).digest();
  }

  /** Sets a new session cookie on the answer. */
  signIn(c: Context, now = Date.now()): void {
    const expires = now + this.ttlSeconds * 1000;
    setCookie(c, SESSION_COOKIE, `${expires}.${this.sign(expires).toString("base64url")}`, {
      path: SESSION_PATH,
      httpOnly: true,
      sameSite: "Strict",
      maxAge: this.ttlSeconds,
      // The browser sees https behind a TLS proxy: it says so in the Origin of the sign-in request.
      secure: c.req.header("origin")?.startsWith("https:") ?? false,
    });
  }

  signOut(c: Context): void {
    deleteCookie(c, SESSION_COOKIE, { path: SESSION_PATH });
  }

  /** True when the request carries an unexpired session this process signed. */
  valid(c: Context, now = Date.now()): boolean {
    const [expires, mac] = (getCookie(c, SESSION_COOKIE) ?? "").split(".", 2);
    const at = Number(expires);
    if (!mac || !Number.isSafeInteger(at) || at <= now) return false;
    const given = Buffer.from(mac, "base64url");
    const want = this.sign(at);
    return given.length === want.length && timingSafeEqual(given, want);
  }
}
