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

  it.each(["93.184.216.34", "1.1.1.1", "172.32.0.1", "2606:4700:4700::1111"])("permits public %s", (ip) => {
    expect(strict.permits(ip)).toBe(true);
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
