export const DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";

/** How an uploaded file's text is read: as UTF-8, parsed (PDF, DOCX), or recognized by OCR (images), on an extraction thread. */
export type FileKind = "text" | "pdf" | "docx" | "image";

/** The extensions docket reads, for messages that say what to send. */
export const READABLE = ".txt, .md, .pdf, .docx, .png, .jpg or .tiff";

const IMAGE_MIMES = ["image/png", "image/jpeg", "image/tiff"];
const IMAGE_EXTENSIONS = ["png", "jpg", "jpeg", "tif", "tiff"];

/** The kind of an upload by its MIME type or, failing that, its extension; undefined when docket cannot read it. */
export function kindOf(name: string, mime: string): FileKind | undefined {
  const ext = name.toLowerCase().split(".").pop() ?? "";
  if (mime === "application/pdf" || ext === "pdf") return "pdf";
  if (mime === DOCX_MIME || ext === "docx") return "docx";
  if (IMAGE_MIMES.includes(mime) || IMAGE_EXTENSIONS.includes(ext)) return "image";
  if (mime.startsWith("text/") || ["txt", "md", "markdown", "text"].includes(ext)) return "text";
  return undefined;
}
