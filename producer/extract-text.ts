import mammoth from "mammoth";
import { extractText as extractPdfText, getDocumentProxy } from "unpdf";
import { ApiError } from "./errors.ts";

export const DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";

type Kind = "text" | "pdf" | "docx";

function kindOf(name: string, mime: string): Kind | undefined {
  const ext = name.toLowerCase().split(".").pop() ?? "";
  if (mime === "application/pdf" || ext === "pdf") return "pdf";
  if (mime === DOCX_MIME || ext === "docx") return "docx";
  if (mime.startsWith("text/") || ["txt", "md", "markdown", "text"].includes(ext)) return "text";
  return undefined;
}

/** The plain text of an uploaded file: txt and md as UTF-8, PDF through unpdf (pdf.js), DOCX through mammoth. */
export async function extractText(file: { name: string; type: string; bytes: Uint8Array }): Promise<string> {
  const kind = kindOf(file.name, file.type);
  const field = `files[${file.name}]`;
  if (!kind)
    throw new ApiError(
      "validation_failed",
      `${file.name}: unsupported file type "${file.type}"; send .txt, .md, .pdf or .docx`,
      field,
    );
  try {
    if (kind === "text") return new TextDecoder("utf-8", { fatal: true }).decode(file.bytes);
    if (kind === "pdf") {
      const pdf = await getDocumentProxy(new Uint8Array(file.bytes));
      const { text } = await extractPdfText(pdf, { mergePages: true });
      return text;
    }
    const { value } = await mammoth.extractRawText({ buffer: Buffer.from(file.bytes) });
    return value;
  } catch (err) {
    throw new ApiError("validation_failed", `${file.name}: could not read the ${kind} file (${(err as Error).message})`, field);
  }
}
