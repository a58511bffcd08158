import { describe, expect, it } from "vitest";
import { OriginPolicy } from "../producer/origin-policy.ts";
import { loadConfig } from "../schema/config.ts";

const local = new OriginPolicy({ host: "127.0.0.1", publicUrls: [] });
const proxied = new OriginPolicy({
  host: "0.0.0.0",
  publicUrls: loadConfig({ DOCKET_PUBLIC_URL: "https://docket.example.com, http://gpu-box.lan:8080/ignored/path" })
    .DOCKET_PUBLIC_URL,
});

describe("OriginPolicy: Host (DNS rebinding)", () => {
  it("accepts loopback names with the port, IP addresses and no Host at all; refuses any other name", () => {
    for (const host of [
      "127.0.0.1:8080",
      "localhost:8080",
      "LOCALHOST:8080",
      "[::1]:8080",
      "10.1.2.3:8080",
      "127.0.0.1",
      undefined,
    ])
      expect(local.hostAllowed(host), String(host)).toBe(true);
    for (const host of ["evil.example", "evil.example:8080", "127.0.0.1.nip.io:8080", "docket.example.com", "", "a b"])
      expect(local.hostAllowed(host), host).toBe(false);
  });

  it("accepts the hosts of DOCKET_PUBLIC_URL and a host-name DOCKET_HOST", () => {
    for (const host of ["docket.example.com", "docket.example.com:443", "Docket.Example.com.", "gpu-box.lan:8080", "localhost:9"])
      expect(proxied.hostAllowed(host), host).toBe(true);
    expect(proxied.hostAllowed("evil.example")).toBe(false);
    expect(new OriginPolicy({ host: "gpu-box", publicUrls: [] }).hostAllowed("gpu-box:8080")).toBe(true);
  });
});

describe("OriginPolicy: Origin (cross-site requests)", () => {
  it("accepts the server's own origin (same host and port as Host) and refuses every other site", () => {
    expect(local.originAllowed("http://127.0.0.1:8080", "127.0.0.1:8080")).toBe(true);
    expect(local.originAllowed("http://localhost:8080", "localhost:8080")).toBe(true);
    expect(local.originAllowed("http://[::1]:8080", "[::1]:8080")).toBe(true);
    for (const origin of [
      "http://evil.example",
      "http://127.0.0.1:3000",
      "http://localhost:8080",
      "null",
      "file://",
      "chrome-extension://x",
    ])
      expect(local.originAllowed(origin, "127.0.0.1:8080"), origin).toBe(false);
  });

  it("accepts DOCKET_PUBLIC_URL origins, and the default port of a proxied https origin", () => {
    expect(proxied.originAllowed("https://docket.example.com", "127.0.0.1:8080")).toBe(true);
    expect(proxied.originAllowed("http://gpu-box.lan:8080", "gpu-box.lan:8080")).toBe(true);
    expect(proxied.originAllowed("http://docket.example.com", "127.0.0.1:8080")).toBe(false);
    expect(local.originAllowed("https://docket.example.com", "docket.example.com")).toBe(true);
    expect(local.originAllowed("https://docket.example.com", "docket.example.com:443")).toBe(true);
    expect(local.originAllowed("https://docket.example.com", "docket.example.com:8443")).toBe(false);
  });

  it("DOCKET_PUBLIC_URL refuses what is not an http(s) URL, naming the variable", () => {
    expect(() => loadConfig({ DOCKET_PUBLIC_URL: "docket.example.com" })).toThrow(/DOCKET_PUBLIC_URL: not an http\(s\) URL/);
    expect(loadConfig({}).DOCKET_PUBLIC_URL).toEqual([]);
  });
});
