import { execFileSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { jetstream } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectNats, natsSecurity } from "../../runtime/nats.ts";
import { provision } from "../../runtime/provision.ts";
import { subjects } from "../../schema/subjects.ts";
import { startTestNats, type TestNats } from "../helpers/nats.ts";
import { testConfig } from "../helpers/stack.ts";

const TLS_CONF = resolve(import.meta.dirname, "../../deploy/nats/secure-tls.conf");
const PASSWORDS = { admin: "admin-secret", producer: "producer-secret", worker: "worker-secret" };

let nats: TestNats;
let certDir: string;

/** A self-signed certificate for 127.0.0.1, made with the openssl CLI: it is its own CA. */
function selfSigned(dir: string): { cert: string; key: string } {
  const cert = join(dir, "server.pem");
  const key = join(dir, "server-key.pem");
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-days",
      "1",
      "-subj",
      "/CN=docket-test",
      "-addext",
      "subjectAltName=IP:127.0.0.1,DNS:localhost",
      "-keyout",
      key,
      "-out",
      cert,
    ],
    { stdio: "ignore" },
  );
  return { cert, key };
}

beforeAll(async () => {
  certDir = await mkdtemp(join(tmpdir(), "docket-tls-"));
  const { cert, key } = selfSigned(certDir);
  nats = await startTestNats({
    conf: TLS_CONF,
    env: {
      DOCKET_NATS_TLS_CERT: cert,
      DOCKET_NATS_TLS_KEY: key,
      DOCKET_NATS_ADMIN_PASSWORD: PASSWORDS.admin,
      DOCKET_NATS_PRODUCER_PASSWORD: PASSWORDS.producer,
      DOCKET_NATS_WORKER_PASSWORD: PASSWORDS.worker,
    },
  });
});
afterAll(async () => {
  await nats?.stop();
  if (certDir) await rm(certDir, { recursive: true, force: true });
});

describe("NATS over TLS (deploy/nats/secure-tls.conf)", () => {
  it("a client that trusts the CA (NATS_TLS_CA) connects encrypted and works", async () => {
    const config = testConfig({
      NATS_URL: nats.url,
      NATS_USER: "admin",
      NATS_PASSWORD: PASSWORDS.admin,
      NATS_TLS_CA: join(certDir, "server.pem"),
    });
    const nc = await connectNats(config.NATS_URL, "tls-admin", natsSecurity(config));
    try {
      expect(nc.info?.tls_required).toBe(true);
      await provision(nc);
      const ack = await jetstream(nc).publish(subjects.event("job_tls", "started"), "{}");
      expect(ack.seq).toBeGreaterThan(0);
    } finally {
      await nc.close();
    }
  });

  it("a client without the CA is refused: the server's certificate is not trusted", async () => {
    await expect(
      connectNats(nats.url, "no-ca", { user: "admin", password: PASSWORDS.admin }).then((nc) => nc.close()),
    ).rejects.toThrow(/certificate/i);
  });

  it("a client with the CA but no password is still refused", async () => {
    await expect(
      connectNats(nats.url, "no-password", { tls: { caFile: join(certDir, "server.pem") } }).then((nc) => nc.close()),
    ).rejects.toThrow(/authorization/i);
  });
});
