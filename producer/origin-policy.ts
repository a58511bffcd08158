import { isIP } from "node:net";
import type { MiddlewareHandler } from "hono";
import { ApiError } from "./errors.ts";

/** host[:port] of a Host header or URL, split; undefined when it does not parse. */
function hostAndPort(host: string): { name: string; port?: string } | undefined {
  if (!URL.canParse(`http://${host}`)) return undefined;
  const url = new URL(`http://${host}`);
  // URL drops :80 for http; keep what the client wrote.
  const port = /:(\d+)$/.exec(host)?.[1];
  return { name: normalizeName(url.hostname), ...(port ? { port } : {}) };
}

/** Lower case, no trailing dot, IPv6 without brackets: how two names are compared. */
const normalizeName = (name: string) =>
  name
    .toLowerCase()
    .replace(/\.$/, "")
    .replace(/^\[(.*)\]$/, "$1");

const defaultPort = (protocol: string) => (protocol === "https:" ? "443" : "80");

/**
 * Which requests a browser could have been tricked into sending, refused. Two rules:
 *
 * - **Host** (DNS rebinding: a page on evil.example re-pointed at 127.0.0.1 is same-origin with docket, and its
 *   requests carry `Host: evil.example`): the name must be `localhost`, an IP address, DOCKET_HOST, or a host of
 *   DOCKET_PUBLIC_URL. Rebinding needs a name the attacker's DNS answers for, so an IP literal is never one and
 *   the port adds nothing.
 * - **Origin** (cross-site request forgery: a form or fetch from another site's page): a request that changes
 *   something may carry no Origin (curl, the CLI, SDKs) or one that is this server itself (same host and port as
 *   Host) or an origin of DOCKET_PUBLIC_URL. `Origin: null` (sandboxed frames, file: pages) is foreign.
 */
export class OriginPolicy {
  private readonly names = new Set<string>(["localhost"]);
  private readonly origins: ReadonlySet<string>;

  constructor({ host, publicUrls }: { host: string; publicUrls: readonly string[] }) {
    const listen = normalizeName(host);
    if (!isIP(listen) && listen !== "") this.names.add(listen);
    for (const origin of publicUrls) this.names.add(normalizeName(new URL(origin).hostname));
    this.origins = new Set(publicUrls.map((u) => new URL(u).origin));
  }

  hostAllowed(host: string | undefined): boolean {
    // Browsers always send Host; a client that sends none (HTTP/1.0) is not one.
    if (host === undefined) return true;
    const h = hostAndPort(host);
    return h !== undefined && (isIP(h.name) !== 0 || this.names.has(h.name));
  }

  originAllowed(origin: string, host: string | undefined): boolean {
    if (!URL.canParse(origin)) return false;
    const o = new URL(origin);
    if (o.protocol !== "http:" && o.protocol !== "https:") return false;
    if (this.origins.has(o.origin)) return true;
    const h = host === undefined ? undefined : hostAndPort(host);
    if (!h) return false;
    // Behind a TLS proxy the browser's scheme is not ours: the Host's missing port is the Origin's default.
    const port = o.port || defaultPort(o.protocol);
    return h.name === normalizeName(o.hostname) && (h.port ?? defaultPort(o.protocol)) === port;
  }
}

/** 403 `host_not_allowed` unless the Host header names this server (OriginPolicy). */
export function checkHost(policy: OriginPolicy): MiddlewareHandler {
  return async (c, next) => {
    const host = c.req.header("host");
    if (!policy.hostAllowed(host))
      throw new ApiError(
        "host_not_allowed",
        `Host ${host} is not a name this server answers to; if clients reach it by that name, add its URL to DOCKET_PUBLIC_URL`,
      );
    return next();
  };
}

/** Methods that change nothing: a page on another site may send them (it cannot read the answer without CORS). */
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/** 403 `origin_not_allowed` when a request that changes something comes from a page on another site (OriginPolicy). */
export function checkOrigin(policy: OriginPolicy): MiddlewareHandler {
  return async (c, next) => {
    if (SAFE_METHODS.has(c.req.method)) return next();
    const origin = c.req.header("origin");
    if (origin !== undefined && !policy.originAllowed(origin, c.req.header("host")))
      throw new ApiError(
        "origin_not_allowed",
        `a page on ${origin} may not change anything here; if that site is yours, add its URL to DOCKET_PUBLIC_URL`,
      );
    return next();
  };
}
