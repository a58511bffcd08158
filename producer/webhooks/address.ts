import { lookup } from "node:dns/promises";
import { BlockList, isIP } from "node:net";

/** Why a callback address is refused: a stable reason for the API error and the delivery's last error. */
export class ForbiddenAddressError extends Error {
  readonly code = "webhook_url_forbidden";
}

/** Ranges a callback may not reach unless DOCKET_WEBHOOK_ALLOW names them (SSRF guard). */
const FORBIDDEN: [string, number, "ipv4" | "ipv6"][] = [
  ["0.0.0.0", 8, "ipv4"], // "this network"; 0.0.0.0 reaches the local host
  ["10.0.0.0", 8, "ipv4"],
  ["100.64.0.0", 10, "ipv4"], // carrier-grade NAT
  ["127.0.0.0", 8, "ipv4"],
  ["169.254.0.0", 16, "ipv4"], // link-local, incl. the 169.254.169.254 metadata service
  ["172.16.0.0", 12, "ipv4"],
  ["192.0.0.0", 24, "ipv4"],
  ["192.168.0.0", 16, "ipv4"],
  ["198.18.0.0", 15, "ipv4"],
  ["224.0.0.0", 3, "ipv4"], // multicast, reserved, broadcast
  ["::", 128, "ipv6"],
  ["::1", 128, "ipv6"],
  ["64:ff9b::", 96, "ipv6"], // NAT64 can reach any IPv4 address
  ["fc00::", 7, "ipv6"], // unique local, incl. fd00:ec2::254 (metadata)
  ["fe80::", 10, "ipv6"],
  ["ff00::", 8, "ipv6"],
];

const NAMED: Record<string, [string, number, "ipv4" | "ipv6"][]> = {
  loopback: [
    ["127.0.0.0", 8, "ipv4"],
    ["::1", 128, "ipv6"],
  ],
  private: [
    ["10.0.0.0", 8, "ipv4"],
    ["172.16.0.0", 12, "ipv4"],
    ["192.168.0.0", 16, "ipv4"],
    ["fc00::", 7, "ipv6"],
  ],
};

/** `::ffff:a.b.c.d` and `::ffff:xxxx:xxxx` are IPv4 addresses in disguise. */
function unmapIPv4(address: string): string {
  const m = /^::ffff:(?:(\d+\.\d+\.\d+\.\d+)|([0-9a-f]{1,4}):([0-9a-f]{1,4}))$/i.exec(address);
  if (!m) return address;
  if (m[1]) return m[1];
  const hi = Number.parseInt(m[2]!, 16);
  const lo = Number.parseInt(m[3]!, 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/**
 * Decides which addresses a webhook may be delivered to. `allow` is DOCKET_WEBHOOK_ALLOW: comma-separated
 * `loopback`, `private` or CIDRs (`10.1.0.0/16`, `fd12::/16`, a bare address means /32 or /128).
 */
export class AddressPolicy {
  private readonly forbidden = new BlockList();
  private readonly allowed = new BlockList();

  constructor(allow = "") {
    for (const [net, prefix, type] of FORBIDDEN) this.forbidden.addSubnet(net, prefix, type);
    for (const raw of allow.split(",")) {
      const entry = raw.trim().toLowerCase();
      if (!entry) continue;
      const named = NAMED[entry];
      if (named) {
        for (const [net, prefix, type] of named) this.allowed.addSubnet(net, prefix, type);
        continue;
      }
      const [net = "", bits] = entry.split("/");
      const family = isIP(net);
      if (!family) throw new Error(`DOCKET_WEBHOOK_ALLOW: "${raw.trim()}" is not loopback, private or a CIDR`);
      const prefix = bits === undefined ? (family === 4 ? 32 : 128) : Number(bits);
      if (!Number.isInteger(prefix) || prefix < 0 || prefix > (family === 4 ? 32 : 128)) {
        throw new Error(`DOCKET_WEBHOOK_ALLOW: "${raw.trim()}" has an invalid prefix length`);
      }
      this.allowed.addSubnet(net, prefix, family === 4 ? "ipv4" : "ipv6");
    }
  }

  /** True when a callback may connect to this IP address. */
  permits(address: string): boolean {
    const ip = unmapIPv4(address.replace(/^\[|\]$/g, ""));
    const type = isIP(ip) === 4 ? "ipv4" : "ipv6";
    if (this.allowed.check(ip, type)) return true;
    return !this.forbidden.check(ip, type);
  }

  /** Throws ForbiddenAddressError unless every address the URL's host resolves to is permitted. */
  async check(url: string): Promise<void> {
    const { hostname } = new URL(url);
    const host = hostname.replace(/^\[|\]$/g, "");
    const addresses = isIP(host) ? [host] : (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);
    const refused = addresses.find((a) => !this.permits(a));
    if (refused !== undefined) {
      throw new ForbiddenAddressError(
        `${hostname} resolves to ${refused}, a private, loopback, link-local or metadata address; set DOCKET_WEBHOOK_ALLOW to permit it`,
      );
    }
  }
}
