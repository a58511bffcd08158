import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { AckPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { Objm } from "@nats-io/obj";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newId } from "../../producer/ids.ts";
import { startProducer } from "../../producer/producer.ts";
import { createLogger } from "../../runtime/log.ts";
import { connectNats } from "../../runtime/nats.ts";
import { ensureModelConsumers, ensureShareConsumer, provision, shareWeight } from "../../runtime/provision.ts";
import type { JobMessage } from "../../schema/job.ts";
import {
  CONTROL_BUCKET,
  DOCS_BUCKET,
  EVENTS_STREAM,
  JOBS_STREAM,
  RECORDER_CONSUMER,
  shareConsumer,
  subjects,
  workerConsumer,
} from "../../schema/subjects.ts";
import { startWorker } from "../../worker/worker.ts";
import { apiCall } from "../helpers/http.ts";
import { startTestNats, type TestNats } from "../helpers/nats.ts";
import { testConfig } from "../helpers/stack.ts";

const SECURE_CONF = resolve(import.meta.dirname, "../../deploy/nats/secure.conf");
const ADMIN_KEY = "test-admin-key-0123456789abcdefghijklmnop";
const PASSWORDS = { admin: "admin-secret", producer: "producer-secret", worker: "worker-secret" };

let nats: TestNats;
let admin: NatsConnection;
let producer: NatsConnection;
let worker: NatsConnection;
const as = (user: keyof typeof PASSWORDS) => nats.connect(user, { user, password: PASSWORDS[user] });

beforeAll(async () => {
  nats = await startTestNats({
    conf: SECURE_CONF,
    env: {
      DOCKET_NATS_ADMIN_PASSWORD: PASSWORDS.admin,
      DOCKET_NATS_PRODUCER_PASSWORD: PASSWORDS.producer,
      DOCKET_NATS_WORKER_PASSWORD: PASSWORDS.worker,
    },
  });
  admin = await as("admin");
  await provision(admin);
  producer = await as("producer");
  worker = await as("worker");
});
afterAll(() => nats?.stop());

const refused = /permissions violation/i;
/** The JetStream API request a pull consumer's fetch sends. */
const pullSubject = (stream: string, consumer: string) => `$JS.API.CONSUMER.MSG.NEXT.${stream}.${consumer}`;
const pull = JSON.stringify({ batch: 1, expires: 1_000_000_000 });

describe("NATS users (deploy/nats/secure.conf)", () => {
  it("refuses a client without a password, or with a wrong one", async () => {
    await expect(connectNats(nats.url, "anonymous")).rejects.toThrow(/authorization/i);
    await expect(connectNats(nats.url, "guess", { user: "worker", password: "guess" })).rejects.toThrow(/authorization/i);
  });

  it("a worker may not publish jobs, create streams or read the recorder's events", async () => {
    await expect(jetstream(worker).publish(subjects.job("default", "summarize"), "{}")).rejects.toThrow(refused);
    const jsm = await jetstreamManager(worker);
    await expect(jsm.streams.add({ name: "ROGUE", subjects: ["rogue.>"] })).rejects.toThrow(refused);
    await expect(jsm.consumers.add(JOBS_STREAM, { durable_name: "rogue" })).rejects.toThrow(refused);
    await expect(worker.request(pullSubject(EVENTS_STREAM, RECORDER_CONSUMER), pull)).rejects.toThrow(refused);
    await expect(new Kvm(worker).open(CONTROL_BUCKET).then((kv) => kv.put("cancel.job_x", "1"))).rejects.toThrow(refused);
  });

  it("a worker pulls from a model's consumers once the admin provisioned them (--model), and may not create them itself", async () => {
    await provision(admin, { models: ["triage"] });
    await expect(ensureModelConsumers(worker, "other")).rejects.toThrow(refused);
    await jetstream(producer).publish(subjects.job("batch", "summarize", "triage"), "{}", { msgID: "job_triage_1" });
    const m = await (await jetstream(worker).consumers.get(JOBS_STREAM, workerConsumer("batch", "triage"))).next({
      expires: 5_000,
    });
    expect(m?.subject).toBe("docket.jobs.batch.summarize.triage");
    m?.ack();
    // Its worker finds them there: ensureModelConsumers creates nothing that exists.
    await ensureModelConsumers(worker, "triage");
  });

  it("a producer may not delete or purge DOCKET_JOBS, change consumers, pull jobs or publish events", async () => {
    const jsm = await jetstreamManager(producer);
    await expect(jsm.streams.delete(JOBS_STREAM)).rejects.toThrow(refused);
    await expect(jsm.streams.purge(JOBS_STREAM)).rejects.toThrow(refused);
    await expect(jsm.streams.update(JOBS_STREAM, { max_msgs: 1 })).rejects.toThrow(refused);
    await expect(jsm.consumers.delete(JOBS_STREAM, workerConsumer("default"))).rejects.toThrow(refused);
    await expect(producer.request(pullSubject(JOBS_STREAM, workerConsumer("default")), pull)).rejects.toThrow(refused);
    await expect(jetstream(producer).publish(subjects.event("job_x", "completed"), "{}")).rejects.toThrow(refused);
    // Nothing was deleted: the admin still sees the stream and its consumer.
    const adminJsm = await jetstreamManager(admin);
    expect((await adminJsm.streams.info(JOBS_STREAM)).config.name).toBe(JOBS_STREAM);
    expect((await adminJsm.consumers.info(JOBS_STREAM, workerConsumer("default"))).name).toBe(workerConsumer("default"));
  });

  it("a producer makes an API key's share consumer (six-token filter) and sets its weight, but no other consumer", async () => {
    const jsm = await jetstreamManager(producer);
    await ensureShareConsumer(producer, { lane: "batch", model: undefined, owner: "key_sec", weight: 2 });
    await ensureShareConsumer(producer, { lane: "batch", model: undefined, owner: "key_sec", weight: 4 });
    const made = await jsm.consumers.info(JOBS_STREAM, shareConsumer("batch", "key_sec"));
    expect(made.config.filter_subject).toBe(subjects.ownerJobs("batch", undefined, "key_sec"));
    expect(shareWeight(made.config.description)).toBe(4);
    // A consumer that would read the lane's own subjects (and take other keys' jobs) is refused.
    await expect(
      jsm.consumers.add(JOBS_STREAM, {
        durable_name: "rogue",
        filter_subject: "docket.jobs.batch.*",
        ack_policy: AckPolicy.Explicit,
      }),
    ).rejects.toThrow(refused);
    await expect(jsm.consumers.delete(JOBS_STREAM, shareConsumer("batch", "key_sec"))).rejects.toThrow(refused);
    // A worker reads it.
    await jetstream(producer).publish(subjects.sharedJob("batch", "summarize", undefined, "key_sec"), "{}", {
      msgID: "job_sec_1",
    });
    const m = await (await jetstream(worker).consumers.get(JOBS_STREAM, shareConsumer("batch", "key_sec"))).next({
      expires: 5_000,
    });
    expect(m?.subject).toBe("docket.jobs.batch.summarize._.key_sec");
    m?.ack();
  });

  it("a producer writes documents and cancel flags; a worker reads them and writes only its heartbeat", async () => {
    const docs = await new Objm(jetstream(producer)).open(DOCS_BUCKET);
    await docs.putBlob({ name: "doc-1" }, new TextEncoder().encode("a stored document"));
    const workerDocs = await new Objm(jetstream(worker)).open(DOCS_BUCKET);
    expect(new TextDecoder().decode((await workerDocs.getBlob("doc-1")) ?? new Uint8Array())).toBe("a stored document");
    await expect(workerDocs.putBlob({ name: "doc-2" }, new Uint8Array([1]))).rejects.toThrow(refused);

    await (await new Kvm(producer).open(CONTROL_BUCKET)).put("cancel.job_y", "1");
    const kv = await new Kvm(worker).open(CONTROL_BUCKET);
    expect((await kv.get("cancel.job_y"))?.string()).toBe("1");
    await kv.put("workers.w-1", JSON.stringify({ at: new Date().toISOString() }));
    expect((await kv.get("workers.w-1"))?.json()).toHaveProperty("at");
  });

  it("a job runs end to end with the producer and the worker as restricted users", async () => {
    const dir = await mkdtemp(join(tmpdir(), "docket-secure-"));
    const log = createLogger("test", "silent");
    const base = { NATS_URL: nats.url, DOCKET_DB: join(dir, "docket.db") };
    // auto: the restricted producer may not provision; it logs that and uses what the admin provisioned.
    const p = await startProducer(
      testConfig({
        ...base,
        NATS_USER: "producer",
        NATS_PASSWORD: PASSWORDS.producer,
        DOCKET_PROVISION: "auto",
        DOCKET_API_KEY: ADMIN_KEY,
      }),
      log,
    );
    const w = await startWorker(testConfig({ ...base, NATS_USER: "worker", NATS_PASSWORD: PASSWORDS.worker }), log);
    try {
      const res = await apiCall(p.url, "POST", "/v1/jobs", ADMIN_KEY, {
        task: "summarize",
        input: { text: "The lessee shall pay rent monthly." },
      });
      const { id } = res.body as { id: string };
      expect(await p.recorder.waitFor(id, ["succeeded", "failed"], () => p.store.get(id)?.state)).toBe("succeeded");

      // An API key's job in a shared lane: on its own consumer, made by the producer user, pulled by the worker user.
      const key = (await apiCall(p.url, "POST", "/v1/keys", ADMIN_KEY, { name: "ward" })).body as { id: string; key: string };
      const keyed = (await apiCall(p.url, "POST", "/v1/jobs", key.key, { task: "summarize", input: { text: "Discharge." } }))
        .body as { id: string };
      expect(await p.recorder.waitFor(keyed.id, ["succeeded", "failed"], () => p.store.get(keyed.id)?.state)).toBe("succeeded");
      await expect(
        (await jetstreamManager(admin)).consumers.info(JOBS_STREAM, shareConsumer("default", key.id)),
      ).resolves.toBeTruthy();

      // A claim-checked document: written by the producer user, read by the worker user.
      const ref = "doc-e2e";
      const docs = await new Objm(jetstream(p.nc)).open(DOCS_BUCKET);
      await docs.putBlob({ name: ref }, new TextEncoder().encode("A document kept in the object store."));
      const msg: JobMessage = {
        v: 1,
        id: newId("job"),
        lane: "batch",
        task: "summarize",
        input: { ref },
        params: {},
        submittedAt: new Date().toISOString(),
      };
      await jetstream(p.nc).publish(subjects.job(msg.lane, msg.task), JSON.stringify(msg), { msgID: msg.id });
      expect(await p.recorder.waitFor(msg.id, ["succeeded", "failed"], () => p.store.get(msg.id)?.state)).toBe("succeeded");
    } finally {
      await w.close(0);
      await p.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
