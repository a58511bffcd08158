import { lookup } from "node:dns/promises";
import { BlockList, isIP } from "node:net";

/** Why a callback address is refused: a stable reason for the API error and the delivery's last error. */
export class ForbiddenAddressError extends Error {
  readonly code = "webhook_url_forbidden";
}

/** IPv4 ranges a callback may not reach unless DOCKET_WEBHOOK_ALLOW names them (SSRF guard). */
const FORBIDDEN_V4: [string, number][] = [
  ["0.0.0.0", 8], // "this network"; 0.0.0.0 reaches the local host
  ["10.0.0.0", 8],
  ["100.64.0.0", 10], // carrier-grade NAT
  ["127.0.0.0", 8],
  ["169.254.0.0", 16], // link-local, incl. the 169.254.169.254 metadata service
  ["172.16.0.0", 12],
  ["192.0.0.0", 24],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15],
  ["224.0.0.0", 3], // multicast, reserved, broadcast
];

/**
 * IPv6 is an allow list, not a block list: only global unicast (2000::/3) is public. Everything outside it is
 * refused, including the forms that embed an IPv4 address: IPv4-compatible ::a.b.c.d (::/96), SIIT
 * ::ffff:0:a.b.c.d, NAT64 64:ff9b::/96 and 64:ff9b:1::/48, and fec0::/10, fc00::/7, fe80::/10, ff00::/8.
 * (IPv4-mapped ::ffff:a.b.c.d is checked as the IPv4 address it connects to.)
 */
const GLOBAL_UNICAST: [string, number] = ["2000::", 3];
/** Special-purpose ranges inside 2000::/3 (IANA registry): they tunnel to IPv4 or are not routed. */
const SPECIAL_V6: [string, number][] = [
  ["2001::", 23], // IETF protocol assignments, incl. Teredo 2001::/32 (embeds an IPv4 server and client)
  ["2001:db8::", 32], // documentation
  ["2002::", 16], // 6to4: the next 32 bits are an IPv4 address
  ["3fff::", 20], // documentation
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
  private readonly forbiddenV4 = new BlockList();
  private readonly globalUnicast = new BlockList();
  private readonly specialV6 = new BlockList();
  private readonly allowed = new BlockList();

  constructor(allow = "") {
    for (const [net, prefix] of FORBIDDEN_V4) this.forbiddenV4.addSubnet(net, prefix, "ipv4");
    this.globalUnicast.addSubnet(...GLOBAL_UNICAST, "ipv6");
    for (const [net, prefix] of SPECIAL_V6) this.specialV6.addSubnet(net, prefix, "ipv6");
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

  /** True when a callback may connect to this IP address: DOCKET_WEBHOOK_ALLOW names it, or it is public unicast. */
  permits(address: string): boolean {
    const ip = unmapIPv4(address.replace(/^\[|\]$/g, ""));
    const family = isIP(ip);
    if (family === 0) return false;
    const type = family === 4 ? "ipv4" : "ipv6";
    if (this.allowed.check(ip, type)) return true;
    if (type === "ipv4") return !this.forbiddenV4.check(ip, "ipv4");
    return this.globalUnicast.check(ip, "ipv6") && !this.specialV6.check(ip, "ipv6");
  }

  /** Throws ForbiddenAddressError unless every address the URL's host resolves to is permitted. */
  async check(url: string): Promise<void> {
    const { hostname } = new URL(url);
    const host = hostname.replace(/^\[|\]$/g, "");
    const addresses = isIP(host) ? [host] : (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);
    const refused = addresses.find((a) => !this.permits(a));
    if (refused !== undefined) {
      throw new ForbiddenAddressError(
        `${hostname} resolves to ${refused}, not a public unicast address (private, loopback, link-local, metadata, or IPv6 that embeds IPv4); set DOCKET_WEBHOOK_ALLOW to permit it`,
      );
    }
  }
}
