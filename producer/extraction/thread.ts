import { parentPort, workerData } from "node:worker_threads";
import { ApiError } from "../errors.ts";
import { type Extracted, type ParseLimits, parseFile, warmUp } from "./extract.ts";
import { OcrEngine } from "./ocr.ts";

/** What pool.ts sends: one file; its bytes are transferred, not copied. */
export interface ParseRequest {
  id: number;
  kind: "pdf" | "docx" | "image";
  bytes: Uint8Array;
}

/**
 * What the thread answers: ready once loaded; `ocr` when a file's OCR starts (the pool then gives it
 * DOCKET_OCR_TIMEOUT_MS); then the text, or the error's code and message (an ApiError does not cross threads).
 */
export type ParseReply =
  | { ready: true }
  | { id: number; ocr: number }
  | ({ id: number } & Extracted)
  | { id: number; error: { code: ApiError["code"]; message: string } };

// An extraction thread: parses one file at a time, as pool.ts hands them out, under the limits it was started with.
const port = parentPort;
if (!port) throw new Error("producer/extraction/thread.ts runs as a worker thread (pool.ts starts it)");
const limits = workerData as ParseLimits;
const engine = new OcrEngine();
port.on("message", async ({ id, kind, bytes }: ParseRequest) => {
  let reply: ParseReply;
  const starting = (pages: number) => port.postMessage({ id, ocr: pages } satisfies ParseReply);
  try {
    reply = { id, ...(await parseFile(kind, bytes, limits, { engine, starting })) };
  } catch (err) {
    const e = err instanceof ApiError ? err : new ApiError("unreadable_file", `the ${kind} file could not be read`);
    reply = { id, error: { code: e.code, message: e.message } };
  }
  port.postMessage(reply);
});
await warmUp();
port.postMessage({ ready: true } satisfies ParseReply);
