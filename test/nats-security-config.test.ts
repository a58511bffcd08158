import { describe, expect, it } from "vitest";
import { natsSecurity } from "../runtime/nats.ts";
import { provisionOptions } from "../runtime/provision.ts";
import { loadConfig } from "../schema/config.ts";

describe("NATS security and provisioning config", () => {
  it("no NATS credentials by default: npm start's open local server needs none", () => {
    const c = loadConfig({});
    expect(natsSecurity(c)).toEqual({});
    expect(c.DOCKET_PROVISION).toBe("auto");
    expect(provisionOptions(c).replicas).toBe(1);
  });

  it("user, password, creds and TLS files reach the client options", () => {
    const c = loadConfig({
      NATS_USER: "worker",
      NATS_PASSWORD: "pw",
      NATS_CREDS: "/etc/docket/worker.creds",
      NATS_TLS_CA: "ca.pem",
      NATS_TLS_CERT: "c.pem",
      NATS_TLS_KEY: "k.pem",
    });
    expect(natsSecurity(c)).toEqual({
      user: "worker",
      password: "pw",
      creds: "/etc/docket/worker.creds",
      tls: { caFile: "ca.pem", certFile: "c.pem", keyFile: "k.pem" },
    });
  });

  it("DOCKET_PROVISION is auto or skip, DOCKET_REPLICAS at least 1", () => {
    expect(loadConfig({ DOCKET_PROVISION: "skip", DOCKET_REPLICAS: "3" })).toMatchObject({
      DOCKET_PROVISION: "skip",
      DOCKET_REPLICAS: 3,
    });
    expect(() => loadConfig({ DOCKET_PROVISION: "sometimes" })).toThrow(/DOCKET_PROVISION/);
    expect(() => loadConfig({ DOCKET_REPLICAS: "0" })).toThrow(/DOCKET_REPLICAS/);
  });
});
