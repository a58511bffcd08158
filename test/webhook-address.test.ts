import { describe, expect, it } from "vitest";
import { AddressPolicy, ForbiddenAddressError } from "../producer/webhooks/address.ts";

describe("webhook address policy (SSRF guard)", () => {
  const strict = new AddressPolicy();

  it.each([
    "10.1.2.3",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "127.0.0.1",
    "127.8.9.10",
    "169.254.169.254",
    "169.254.1.1",
    "0.0.0.0",
    "::1",
    "::",
    "fc00::1",
    "fd00:ec2::254",
    "fe80::1",
    "::ffff:127.0.0.1",
    "::ffff:a9fe:a9fe",
  ])("refuses %s by default", (ip) => {
    expect(strict.permits(ip)).toBe(false);
  });

  it.each(["93.184.216.34", "1.1.1.1", "172.32.0.1", "2606:4700:4700::1111", "2a00:1450:4001:81c::200e"])(
    "permits public %s",
    (ip) => {
      expect(strict.permits(ip)).toBe(true);
    },
  );

  // IPv6 forms that embed an IPv4 address or lie in a special range: only global unicast 2000::/3 is public.
  it.each([
    ["::127.0.0.1", "IPv4-compatible loopback (::/96)"],
    ["::a9fe:a9fe", "IPv4-compatible metadata address"],
    ["::ffff:0:127.0.0.1", "SIIT IPv4-translated loopback (::ffff:0:0:0/96)"],
    ["64:ff9b::127.0.0.1", "NAT64 well-known prefix 64:ff9b::/96"],
    ["64:ff9b::a9fe:a9fe", "NAT64 to the metadata address"],
    ["64:ff9b:1::a00:1", "NAT64 local-use prefix 64:ff9b:1::/48"],
    ["2002:7f00:1::1", "6to4 2002::/16 of 127.0.0.1"],
    ["2002:a9fe:a9fe::1", "6to4 of the metadata address"],
    ["2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo 2001::/32"],
    ["2001:db8::1", "documentation 2001:db8::/32"],
    ["3fff::1", "documentation 3fff::/20"],
    ["fec0::1", "deprecated site-local fec0::/10"],
    ["100::1", "discard-only 100::/64"],
    ["ff02::1", "multicast"],
  ])("refuses %s (%s) by default", (ip) => {
    expect(strict.permits(ip)).toBe(false);
  });

  it.each([
    "http://[::127.0.0.1]:9/hook",
    "http://[::ffff:0:127.0.0.1]:9/hook",
    "http://[64:ff9b::169.254.169.254]/latest/meta-data",
    "http://[2002:7f00:1::1]/hook",
    "http://[fec0::1]/hook",
  ])("a URL with the literal address %s is refused", async (url) => {
    await expect(strict.check(url)).rejects.toBeInstanceOf(ForbiddenAddressError);
  });

  it("an embedded-IPv4 or special IPv6 range is permitted only through an explicit CIDR in DOCKET_WEBHOOK_ALLOW", () => {
    expect(new AddressPolicy("loopback").permits("::127.0.0.1")).toBe(false);
    expect(new AddressPolicy("loopback").permits("64:ff9b::127.0.0.1")).toBe(false);
    const nat64 = new AddressPolicy("64:ff9b::/96");
    expect(nat64.permits("64:ff9b::93.184.216.34")).toBe(true);
    expect(nat64.permits("64:ff9b:1::a00:1")).toBe(false);
    expect(new AddressPolicy("fec0::/10").permits("fec0::1")).toBe(true);
  });

  it("loopback in DOCKET_WEBHOOK_ALLOW permits 127/8 and ::1 but still refuses private and metadata addresses", () => {
    const p = new AddressPolicy("loopback");
    expect(p.permits("127.0.0.1")).toBe(true);
    expect(p.permits("::1")).toBe(true);
    expect(p.permits("::ffff:127.0.0.1")).toBe(true);
    expect(p.permits("10.0.0.1")).toBe(false);
    expect(p.permits("169.254.169.254")).toBe(false);
  });

  it("a CIDR list permits exactly those ranges", () => {
    const p = new AddressPolicy("10.20.0.0/16, fd12::/16, 192.168.5.5");
    expect(p.permits("10.20.3.4")).toBe(true);
    expect(p.permits("10.21.0.1")).toBe(false);
    expect(p.permits("fd12::9")).toBe(true);
    expect(p.permits("192.168.5.5")).toBe(true);
    expect(p.permits("192.168.5.6")).toBe(false);
  });

  it("a malformed allow entry is a start-up error naming the setting", () => {
    expect(() => new AddressPolicy("loopbak")).toThrow(/DOCKET_WEBHOOK_ALLOW/);
    expect(() => new AddressPolicy("10.0.0.0/40")).toThrow(/prefix/);
  });

  it("a host name that resolves to loopback is refused; literal IPs are checked without DNS", async () => {
    await expect(strict.check("http://localhost:9/hook")).rejects.toBeInstanceOf(ForbiddenAddressError);
    await expect(strict.check("http://[::1]:9/hook")).rejects.toBeInstanceOf(ForbiddenAddressError);
    await expect(strict.check("http://169.254.169.254/latest/meta-data")).rejects.toThrow(/DOCKET_WEBHOOK_ALLOW/);
    await expect(new AddressPolicy("loopback").check("http://localhost:9/hook")).resolves.toBeUndefined();
  });
});
