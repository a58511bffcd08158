import { afterEach, describe, expect, it } from "vitest";
import { ApiError } from "../../producer/errors.ts";
import { type ExtractionOptions, ExtractionPool } from "../../producer/extraction/pool.ts";
import { createLogger } from "../../runtime/log.ts";
import { docxBomb, docxWith, pdfWith, pdfWithPages, scannedImage, scannedPdf } from "../fixtures/documents.ts";

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
      ocr: true,
      maxOcrPages: 10,
      ocrTimeoutMs: 120_000,
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
    const read = async (name: string, bytes: Uint8Array) => (await p.extract({ name, type: "", bytes })).text;
    expect(await read("a.txt", new TextEncoder().encode("plain"))).toBe("plain");
    expect((await read("c.pdf", await pdfWith("Rent is due monthly."))).trim()).toBe("Rent is due monthly.");
    expect(await read("d.docx", await docxWith("Tenancy", "agreement"))).toBe("Tenancy\n\nagreement\n\n");
  });

  it("a PDF with more pages than DOCKET_EXTRACT_MAX_PAGES is refused 413 too_many_pages, naming the file, count and setting", async () => {
    const p = pool();
    const err = await refusal(p, "long.pdf", await pdfWithPages(101));
    expect([err.status, err.code, err.field]).toEqual([413, "too_many_pages", "files[long.pdf]"]);
    expect(err.message).toMatch(/^long\.pdf: the PDF has 101 pages; the most accepted is 100.*DOCKET_EXTRACT_MAX_PAGES/);
    expect((await p.extract({ name: "ok.pdf", type: "", bytes: await pdfWithPages(100, "first") })).text.trim()).toBe("first");
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
    expect((await p.extract({ name: "next.pdf", type: "", bytes: await pdfWith("after") })).text.trim()).toBe("after");
  });

  it("a file that needs more heap than DOCKET_EXTRACT_MEMORY_BYTES is refused 422 extraction_out_of_memory", async () => {
    const p = pool({ memoryBytes: 128 * MiB, maxUncompressedBytes: 64 * MiB });
    const err = await refusal(p, "dense.docx", await docxBomb(8 * MiB));
    expect([err.status, err.code]).toEqual([422, "extraction_out_of_memory"]);
    expect((await p.extract({ name: "next.pdf", type: "", bytes: await pdfWith("after") })).text.trim()).toBe("after");
  });

  it("past DOCKET_EXTRACT_QUEUE files waiting, a file is refused 429 backpressure with Retry-After", async () => {
    const p = pool({ threads: 1, queue: 1, maxUncompressedBytes: 64 * MiB });
    const slow = p.extract({ name: "slow.docx", type: "", bytes: await docxBomb(2 * MiB) });
    const waiting = p.extract({ name: "waiting.pdf", type: "", bytes: await pdfWith("waited") });
    const err = await refusal(p, "third.pdf", await pdfWith("refused"));
    expect([err.status, err.code, err.headers["retry-after"]]).toEqual([429, "backpressure", "5"]);
    expect(err.message).toMatch(/DOCKET_EXTRACT_QUEUE/);
    expect((await slow).text).toMatch(/^bomb/);
    expect((await waiting).text.trim()).toBe("waited");
  });
});

describe("unusable files have their codes", () => {
  it("unsupported type, not UTF-8, corrupt PDF and DOCX, empty text and a PDF of blank pages: each refused with its code", async () => {
    const p = pool();
    const codes = [];
    for (const [name, bytes] of [
      ["photo.gif", new Uint8Array([0x47, 0x49, 0x46])],
      ["latin1.txt", new Uint8Array([0x63, 0x61, 0x66, 0xe9])],
      ["broken.pdf", new TextEncoder().encode("%PDF-1.7\nthis is not a PDF")],
      ["broken.docx", new TextEncoder().encode("PK not a zip")],
      ["empty.txt", new Uint8Array()],
      ["empty.pdf", new Uint8Array()],
      ["blank.pdf", await pdfWithPages(3)],
    ] as const) {
      const err = await refusal(p, name, bytes);
      codes.push([name, err.status, err.code, err.field]);
    }
    expect(codes).toEqual([
      ["photo.gif", 400, "unsupported_file_type", "files[photo.gif]"],
      ["latin1.txt", 400, "invalid_utf8", "files[latin1.txt]"],
      ["broken.pdf", 422, "unreadable_file", "files[broken.pdf]"],
      ["broken.docx", 422, "unreadable_file", "files[broken.docx]"],
      ["empty.txt", 422, "empty_document", "files[empty.txt]"],
      ["empty.pdf", 422, "empty_document", "files[empty.pdf]"],
      ["blank.pdf", 422, "empty_document", "files[blank.pdf]"],
    ]);
  });
});

describe("OCR of scanned documents", () => {
  it("a PDF's pages without a text layer are read by OCR; the others keep their text; ocrPages names the scanned ones", async () => {
    const pdf = await scannedPdf("Cover note: the signed lease follows.", ["RENTAL AGREEMENT", "The tenant pays rent monthly."]);
    const { text, ocrPages } = await pool().extract({ name: "signed.pdf", type: "application/pdf", bytes: pdf });
    expect(ocrPages).toEqual([2]);
    expect(text).toContain("Cover note: the signed lease follows.");
    expect(text).toMatch(/RENTAL AGREEMENT/);
    expect(text).toMatch(/tenant pays rent monthly/);
  });

  it("PNG, JPEG and TIFF images are read by OCR as page 1", async () => {
    const p = pool();
    for (const format of ["png", "jpeg", "tiff"] as const) {
      const bytes = await scannedImage(format, ["Referral for Jane Doe", "Diagnosis: fractured wrist"]);
      const { text, ocrPages } = await p.extract({ name: `fax.${format === "jpeg" ? "jpg" : format}`, type: "", bytes });
      expect(ocrPages, format).toEqual([1]);
      expect(text, format).toMatch(/Referral for Jane Doe/);
      expect(text, format).toMatch(/fractured wrist/);
    }
  });

  it("with OCR off, a scanned PDF is refused 422 scanned_document saying OCR is off; an image too", async () => {
    const p = pool({ ocr: false });
    const pdf = await refusal(p, "scan.pdf", await scannedPdf(["SIGNED"]));
    expect([pdf.status, pdf.code]).toEqual([422, "scanned_document"]);
    expect(pdf.message).toBe("scan.pdf: this PDF has no text layer; OCR is off (DOCKET_OCR)");
    const png = await refusal(p, "scan.png", await scannedImage("png", ["SIGNED"]));
    expect([png.code, png.message]).toEqual(["scanned_document", "scan.png: this is an image; OCR is off (DOCKET_OCR)"]);
  });

  it("page and size limits: more scanned pages than DOCKET_OCR_MAX_PAGES, a TIFF of several pages, an image of too many pixels", async () => {
    const p = pool({ maxOcrPages: 1 });
    const pages = await refusal(p, "two.pdf", await scannedPdf(["one"], ["two"]));
    expect([pages.status, pages.code]).toEqual([413, "too_many_pages"]);
    expect(pages.message).toMatch(/2 scanned pages .* at most 1.*DOCKET_OCR_MAX_PAGES/);
    const tiff = await refusal(p, "fax.tiff", await scannedImage("tiff", ["page"], 3));
    expect([tiff.code, tiff.message]).toEqual(["too_many_pages", expect.stringMatching(/holds 3 pages/)]);
    // A PNG header that declares 100,000 × 100,000 pixels: refused before any pixel is decoded.
    const huge = Buffer.from("89504e470d0a1a0a0000000d49484452000186a0000186a00806000000", "hex");
    const big = await refusal(p, "huge.png", huge);
    expect([big.status, big.code]).toEqual([413, "payload_too_large"]);
  });

  it("OCR runs under DOCKET_OCR_TIMEOUT_MS rather than DOCKET_EXTRACT_TIMEOUT_MS; past it 422 extraction_timeout", async () => {
    const pdf = await scannedPdf(["First scanned page"], ["Second scanned page"]);
    // Two pages of OCR take seconds here, longer than the 1 s that parsing is given.
    const slow = pool({ timeoutMs: 1_000, ocrTimeoutMs: 120_000 });
    // (A file's bytes move to the thread: each call gets its own copy.)
    expect((await slow.extract({ name: "ok.pdf", type: "", bytes: pdf.slice() })).ocrPages).toEqual([1, 2]);
    const err = await refusal(pool({ ocrTimeoutMs: 200 }), "late.pdf", pdf);
    expect([err.status, err.code]).toEqual([422, "extraction_timeout"]);
    expect(err.message).toMatch(/by OCR took longer than 200 ms \(DOCKET_OCR_TIMEOUT_MS\)/);
  });
});
