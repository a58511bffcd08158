import mammoth from "mammoth";
import { extractText as extractPdfText, getDocumentProxy, getResolvedPDFJS } from "unpdf";
import { ApiError } from "../errors.ts";
import { checkInflatedSize } from "./zip-directory.ts";

/** The limits a file is parsed under, checked before the costly part of the parse. */
export interface ParseLimits {
  /** Most pages of a PDF (DOCKET_EXTRACT_MAX_PAGES). */
  maxPages: number;
  /** Most bytes a DOCX's zip entries may inflate to, together (DOCKET_EXTRACT_MAX_UNCOMPRESSED_BYTES). */
  maxUncompressedBytes: number;
}

/**
 * The plain text of a PDF (unpdf, pdf.js) or a DOCX (mammoth). CPU- and memory-heavy: runs on an extraction
 * thread (thread.ts), never on the API's event loop. Throws ApiError with the code of the limit a file breaks.
 */
export async function parseFile(kind: "pdf" | "docx", bytes: Uint8Array, limits: ParseLimits): Promise<string> {
  if (kind === "docx") checkInflatedSize(bytes, limits.maxUncompressedBytes);
  try {
    if (kind === "pdf") return await pdfText(bytes, limits.maxPages);
    const { value } = await mammoth.extractRawText({ buffer: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) });
    return value;
  } catch (err) {
    if (err instanceof ApiError) throw err;
    throw new ApiError("validation_failed", `could not read the ${kind} file (${(err as Error).message})`);
  }
}

async function pdfText(bytes: Uint8Array, maxPages: number): Promise<string> {
  // The page count comes from the document's page tree, read before any page is: 0.4 s for 10,000 pages.
  const pdf = await getDocumentProxy(bytes);
  try {
    if (pdf.numPages > maxPages)
      throw new ApiError(
        "too_many_pages",
        `the PDF has ${pdf.numPages} pages; the most accepted is ${maxPages}: split it, or raise DOCKET_EXTRACT_MAX_PAGES`,
      );
    const { text } = await extractPdfText(pdf, { mergePages: true });
    return text;
  } finally {
    await pdf.destroy();
  }
}

/** Loads pdf.js (unpdf imports it on first use: a few hundred ms), so that a file's time limit counts its parsing only. */
export async function warmUp(): Promise<void> {
  await getResolvedPDFJS();
}
