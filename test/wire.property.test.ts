import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ZodError } from "zod";
import { EventMessage } from "../schema/event.ts";
import { JobInput, JobMessage } from "../schema/job.ts";
import { EVENT_KINDS, LANES, TASKS } from "../schema/subjects.ts";

const id = fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/);
const iso = fc
  .date({ min: new Date("2000-01-01"), max: new Date("2100-01-01"), noInvalidDate: true })
  .map((d) => d.toISOString());
const opt = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });
/** Drops keys whose value is undefined: what JSON.stringify does on the wire. */
const defined = <T extends object>(o: T): T => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;

const jobMessage = fc
  .record({
    v: fc.constant(1 as const),
    id,
    lane: fc.constantFrom(...LANES),
    task: fc.constantFrom(...TASKS),
    input: fc
      .record({
        text: opt(fc.string()),
        ref: opt(fc.string()),
        documentId: opt(fc.string({ maxLength: 64 })),
        sha256: opt(fc.stringMatching(/^[0-9a-f]{64}$/)),
        title: opt(fc.string({ maxLength: 1024 })),
        mime: opt(fc.string({ maxLength: 255 })),
      })
      .map(defined),
    params: fc
      .record({
        maxTokens: opt(fc.integer({ min: 1, max: 32768 })),
        temperature: opt(fc.double({ min: 0, max: 2, noNaN: true })),
        seed: opt(fc.nat()),
        // zod drops a "__proto__" key from a record (a prototype-pollution guard docket wants): not generated.
        schema: opt(
          fc.dictionary(
            fc.string().filter((k) => k !== "__proto__"),
            fc.jsonValue(),
          ),
        ),
        labels: opt(fc.array(fc.string({ minLength: 1 }), { minLength: 2, maxLength: 100 })),
        question: opt(fc.string({ minLength: 1, maxLength: 8192 })),
        messages: opt(
          fc.array(fc.record({ role: fc.constantFrom("system", "user", "assistant"), content: fc.string() }), {
            minLength: 1,
            maxLength: 20,
          }),
        ),
        overflow: opt(fc.constantFrom("chunk", "truncate", "fail")),
      })
      .map(defined),
    paramsRef: opt(fc.string()),
    batchId: opt(fc.string()),
    customId: opt(fc.string()),
    submittedAt: iso,
    deadline: opt(iso),
  })
  .map(defined);

const eventMessage = fc
  .record({
    v: fc.constant(1 as const),
    jobId: id,
    kind: fc.constantFrom(...EVENT_KINDS),
    attempt: fc.integer({ min: 1, max: 100 }),
    workerId: fc.string(),
    at: iso,
    lane: opt(fc.constantFrom(...LANES)),
    task: opt(fc.constantFrom(...TASKS)),
    batchId: opt(fc.string()),
    customId: opt(fc.string()),
    submittedAt: opt(iso),
    tokens: opt(fc.nat()),
    result: opt(
      fc
        .record({
          text: fc.string(),
          json: opt(fc.jsonValue()),
          usage: fc.record({ promptTokens: fc.nat(), completionTokens: fc.nat() }),
          timings: fc.record({
            queueMs: fc.nat(),
            runMs: fc.nat(),
            tokensPerSecond: fc.double({ min: 0, max: 1e6, noNaN: true }),
          }),
          model: fc.string(),
        })
        .map(defined),
    ),
    error: opt(fc.record({ code: fc.string(), message: fc.string(), retryable: fc.boolean() })),
  })
  .map(defined);

/** The value a receiver sees: the message after JSON on the wire. */
const overTheWire = (m: unknown) => JSON.parse(JSON.stringify(m));

/** Anything a client could put on a subject: JSON of any shape, near-misses of valid messages included. */
/** A valid message with one field replaced by any JSON value: a near miss. */
const nearMiss = (valid: fc.Arbitrary<object>) =>
  valid.chain((m) => fc.constantFrom(...Object.keys(m)).chain((key) => fc.jsonValue().map((value) => ({ ...m, [key]: value }))));

/** Anything a client could put on a subject: JSON of any shape, values JSON cannot carry, near misses. */
const junk = fc.oneof(fc.jsonValue(), fc.anything(), nearMiss(jobMessage), nearMiss(eventMessage));

function onlyZodErrors(schema: { parse(v: unknown): unknown }, value: unknown): void {
  try {
    schema.parse(value);
  } catch (err) {
    expect(err).toBeInstanceOf(ZodError);
  }
}

describe("wire schemas (property-based)", () => {
  it("any valid job message survives JSON on the wire and parses to itself", () => {
    fc.assert(
      fc.property(jobMessage, (m) => {
        expect(JobMessage.parse(overTheWire(m))).toEqual(overTheWire(m));
      }),
      { numRuns: 300 },
    );
  });

  it("a job message with input.documentId and input.sha256 is valid to a worker whose schema predates them", () => {
    const before = JobMessage.extend({ input: JobInput.omit({ documentId: true, sha256: true }) });
    fc.assert(
      fc.property(jobMessage, (m) => {
        expect(before.safeParse(overTheWire(m)).success).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it("any valid event message survives JSON on the wire and parses to itself", () => {
    fc.assert(
      fc.property(eventMessage, (m) => {
        expect(EventMessage.parse(overTheWire(m))).toEqual(overTheWire(m));
      }),
      { numRuns: 300 },
    );
  });

  it("junk is refused with a zod error, never another exception", () => {
    fc.assert(
      fc.property(junk, (value) => {
        onlyZodErrors(JobMessage, value);
        onlyZodErrors(EventMessage, value);
      }),
      { numRuns: 500 },
    );
  });
});
