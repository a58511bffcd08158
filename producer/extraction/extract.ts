import mammoth from "mammoth";
import { extractText as extractPdfText, getDocumentProxy, getResolvedPDFJS, renderPageAsImage } from "unpdf";
import { ApiError } from "../errors.ts";
import { readImageHeader } from "./image-header.ts";
import type { OcrEngine } from "./ocr.ts";
import { checkInflatedSize } from "./zip-directory.ts";

/** The limits a file is parsed under, checked before the costly part of the parse. */
export interface ParseLimits {
  /** Most pages of a PDF (DOCKET_EXTRACT_MAX_PAGES). */
  maxPages: number;
  /** Most bytes a DOCX's zip entries may inflate to, together (DOCKET_EXTRACT_MAX_UNCOMPRESSED_BYTES). */
  maxUncompressedBytes: number;
  /** Whether pages without a text layer and image files are read by OCR (DOCKET_OCR). */
  ocr: boolean;
  /** Most pages of one PDF read by OCR (DOCKET_OCR_MAX_PAGES). */
  maxOcrPages: number;
}

/** A file's text, and the pages of it that OCR read (1-based; an image file is page 1). */
export interface Extracted {
  text: string;
  ocrPages?: number[];
}

/** What parseFile needs for OCR: the thread's engine, and a call made before OCR starts (the pool then allows more time). */
export interface OcrContext {
  engine: OcrEngine;
  starting(pages: number): void;
}

/**
 * The plain text of a PDF (unpdf, pdf.js; pages without a text layer by OCR), a DOCX (mammoth) or an image (OCR).
 * CPU- and memory-heavy: runs on an extraction thread (thread.ts), never on the API's event loop. Throws ApiError
 * with the code of the limit a file breaks, or unreadable_file, empty_document or scanned_document.
 */
export async function parseFile(
  kind: "pdf" | "docx" | "image",
  bytes: Uint8Array,
  limits: ParseLimits,
  ocr: OcrContext,
): Promise<Extracted> {
  if (kind === "docx") checkInflatedSize(bytes, limits.maxUncompressedBytes);
  if (kind === "image") {
    readImageHeader(bytes);
    ocr.starting(1);
    return { text: await ocr.engine.recognize(bytes), ocrPages: [1] };
  }
  try {
    if (kind === "pdf") return await pdfText(bytes, limits, ocr);
    const { value } = await mammoth.extractRawText({ buffer: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) });
    return { text: value };
  } catch (err) {
    if (err instanceof ApiError) throw err;
    throw new ApiError("unreadable_file", `the ${kind.toUpperCase()} file could not be read (${(err as Error).message})`);
  }
}

/** pdf.js operators that paint an image: a page without text that paints one is a scan. */
const IMAGE_OPERATORS = [
  "paintImageXObject",
  "paintImageXObjectRepeat",
  "paintInlineImageXObject",
  "paintInlineImageXObjectGroup",
  "paintImageMaskXObject",
  "paintImageMaskXObjectGroup",
  "paintImageMaskXObjectRepeat",
] as const;

/** Pages are rendered for OCR at 200 dpi (Tesseract reads body text well from about 150), at most 4,000 px a side. */
const OCR_DPI = 200;
const OCR_MAX_SIDE = 4_000;

async function pdfText(bytes: Uint8Array, limits: ParseLimits, ocr: OcrContext): Promise<Extracted> {
  // The page count comes from the document's page tree, read before any page is: 0.4 s for 10,000 pages.
  const pdf = await getDocumentProxy(bytes);
  try {
    if (pdf.numPages > limits.maxPages)
      throw new ApiError(
        "too_many_pages",
        `the PDF has ${pdf.numPages} pages; the most accepted is ${limits.maxPages}: split it, or raise DOCKET_EXTRACT_MAX_PAGES`,
      );
    const { text: pages } = await extractPdfText(pdf, { mergePages: false });
    const { OPS } = await getResolvedPDFJS();
    const imageOps = new Set(IMAGE_OPERATORS.map((name) => OPS[name]));
    const scanned: number[] = [];
    for (let n = 1; n <= pages.length; n++) {
      if (pages[n - 1]?.trim()) continue;
      const { fnArray } = await (await pdf.getPage(n)).getOperatorList();
      if (fnArray.some((op) => imageOps.has(op))) scanned.push(n);
    }
    const hasText = pages.some((p) => p.trim() !== "");
    if (scanned.length > 0 && !limits.ocr && !hasText)
      throw new ApiError("scanned_document", "this PDF has no text layer; OCR is off (DOCKET_OCR)");
    if (scanned.length === 0 || !limits.ocr) {
      if (!hasText) throw new ApiError("empty_document", `the PDF holds no text (${pdf.numPages} pages without any)`);
      // Joined as unpdf's mergePages joins them: the same PDF gives the same text (and sha256) as before OCR existed.
      return { text: pages.join("\n") };
    }
    if (scanned.length > limits.maxOcrPages)
      throw new ApiError(
        "too_many_pages",
        `the PDF has ${scanned.length} scanned pages (no text layer); OCR reads at most ${limits.maxOcrPages}: split it, or raise DOCKET_OCR_MAX_PAGES`,
      );
    ocr.starting(scanned.length);
    const canvasImport = () => import("@napi-rs/canvas");
    for (const n of scanned) {
      const viewport = (await pdf.getPage(n)).getViewport({ scale: 1 });
      const scale = Math.min(OCR_DPI / 72, OCR_MAX_SIDE / Math.max(viewport.width, viewport.height));
      const png = await renderPageAsImage(pdf, n, { canvasImport, scale });
      pages[n - 1] = (await ocr.engine.recognize(new Uint8Array(png))).trim();
    }
    const text = pages.join("\n");
    if (!text.trim()) throw new ApiError("empty_document", `OCR found no text on the PDF's ${scanned.length} scanned pages`);
    return { text, ocrPages: scanned };
  } finally {
    await pdf.destroy();
  }
}

/** Loads pdf.js (unpdf imports it on first use: a few hundred ms), so that a file's time limit counts its parsing only. */
export async function warmUp(): Promise<void> {
  await getResolvedPDFJS();
}
