export const DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";

/** How an uploaded file's text is read: as UTF-8, or parsed (PDF, DOCX) on an extraction thread. */
export type FileKind = "text" | "pdf" | "docx";

/** The kind of an upload by its MIME type or, failing that, its extension; undefined when docket cannot read it. */
export function kindOf(name: string, mime: string): FileKind | undefined {
  const ext = name.toLowerCase().split(".").pop() ?? "";
  if (mime === "application/pdf" || ext === "pdf") return "pdf";
  if (mime === DOCX_MIME || ext === "docx") return "docx";
  if (mime.startsWith("text/") || ["txt", "md", "markdown", "text"].includes(ext)) return "text";
  return undefined;
}
