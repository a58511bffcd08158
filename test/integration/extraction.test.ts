import { afterEach, describe, expect, it } from "vitest";
import { ApiError } from "../../producer/errors.ts";
import { type ExtractionOptions, ExtractionPool } from "../../producer/extraction/pool.ts";
import { createLogger } from "../../runtime/log.ts";
import { docxBomb, docxWith, pdfWith, pdfWithPages } from "../fixtures/documents.ts";

const MiB = 2 ** 20;
const pools: ExtractionPool[] = [];
afterEach(async () => {
  for (const p of pools.splice(0)) await p.close();
});

function pool(options: Partial<ExtractionOptions> = {}): ExtractionPool {
  const p = new ExtractionPool(
    {
      threads: 1,
      queue: 4,
      maxPages: 100,
      maxUncompressedBytes: 16 * MiB,
      timeoutMs: 20_000,
      memoryBytes: 512 * MiB,
      ...options,
    },
    createLogger("test", "silent"),
  );
  pools.push(p);
  return p;
}

/** The ApiError extract() throws, or a failure when it resolves. */
async function refusal(p: ExtractionPool, name: string, bytes: Uint8Array): Promise<ApiError> {
  const err = await p.extract({ name, type: "", bytes }).then(
    () => new Error(`${name} was read`),
    (e: unknown) => e,
  );
  if (!(err instanceof ApiError)) throw err;
  return err;
}

describe("text extraction on worker threads", () => {
  it("reads txt and md here, PDF and DOCX on a thread", async () => {
    const p = pool();
    const read = (name: string, bytes: Uint8Array) => p.extract({ name, type: "", bytes });
    expect(await read("a.txt", new TextEncoder().encode("plain"))).toBe("plain");
    expect((await read("c.pdf", await pdfWith("Rent is due monthly."))).trim()).toBe("Rent is due monthly.");
    expect(await read("d.docx", await docxWith("Tenancy", "agreement"))).toBe("Tenancy\n\nagreement\n\n");
  });

  it("a PDF with more pages than DOCKET_EXTRACT_MAX_PAGES is refused 413 too_many_pages, naming the file, count and setting", async () => {
    const p = pool();
    const err = await refusal(p, "long.pdf", await pdfWithPages(101));
    expect([err.status, err.code, err.field]).toEqual([413, "too_many_pages", "files[long.pdf]"]);
    expect(err.message).toMatch(/^long\.pdf: the PDF has 101 pages; the most accepted is 100.*DOCKET_EXTRACT_MAX_PAGES/);
    expect((await p.extract({ name: "ok.pdf", type: "", bytes: await pdfWithPages(100) })).trim()).toBe("");
  });

  it("a DOCX is refused 413 uncompressed_too_large by what its zip directory declares, before any entry is inflated", async () => {
    // Declares 500 MiB and holds 1 MiB: only the directory can have said no.
    const err = await refusal(pool(), "bomb.docx", await docxBomb(MiB, 500 * MiB));
    expect([err.status, err.code]).toEqual([413, "uncompressed_too_large"]);
    expect(err.message).toMatch(/inflates to \d+ bytes; the most accepted is 16777216.*DOCKET_EXTRACT_MAX_UNCOMPRESSED_BYTES/);
  });

  it("a DOCX whose zip directory understates an entry is refused when that entry inflates past it", async () => {
    const err = await refusal(pool(), "liar.docx", await docxBomb(64 * MiB, 1000));
    expect(err.code).toBe("uncompressed_too_large");
    expect(err.message).toMatch(/word\/document\.xml inflates past the 1000 bytes its zip directory declares/);
  });

  it("a file over DOCKET_EXTRACT_TIMEOUT_MS is refused 422 extraction_timeout; a new thread reads the next file", async () => {
    const p = pool({ timeoutMs: 2_000, maxUncompressedBytes: 64 * MiB });
    // Sixteen MiB of one-word paragraphs: mammoth needs over ten seconds (and gigabytes) for them.
    const err = await refusal(p, "slow.docx", await docxBomb(16 * MiB));
    expect([err.status, err.code]).toEqual([422, "extraction_timeout"]);
    expect(err.message).toMatch(/longer than 2000 ms \(DOCKET_EXTRACT_TIMEOUT_MS\)/);
    expect((await p.extract({ name: "next.pdf", type: "", bytes: await pdfWith("after") })).trim()).toBe("after");
  });

  it("a file that needs more heap than DOCKET_EXTRACT_MEMORY_BYTES is refused 422 extraction_out_of_memory", async () => {
    const p = pool({ memoryBytes: 128 * MiB, maxUncompressedBytes: 64 * MiB });
    const err = await refusal(p, "dense.docx", await docxBomb(8 * MiB));
    expect([err.status, err.code]).toEqual([422, "extraction_out_of_memory"]);
    expect((await p.extract({ name: "next.pdf", type: "", bytes: await pdfWith("after") })).trim()).toBe("after");
  });

  it("past DOCKET_EXTRACT_QUEUE files waiting, a file is refused 429 backpressure with Retry-After", async () => {
    const p = pool({ threads: 1, queue: 1, maxUncompressedBytes: 64 * MiB });
    const slow = p.extract({ name: "slow.docx", type: "", bytes: await docxBomb(2 * MiB) });
    const waiting = p.extract({ name: "waiting.pdf", type: "", bytes: await pdfWith("waited") });
    const err = await refusal(p, "third.pdf", await pdfWith("refused"));
    expect([err.status, err.code, err.headers["retry-after"]]).toEqual([429, "backpressure", "5"]);
    expect(err.message).toMatch(/DOCKET_EXTRACT_QUEUE/);
    expect(await slow).toMatch(/^bomb/);
    expect((await waiting).trim()).toBe("waited");
  });
});
