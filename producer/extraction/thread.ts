import { parentPort, workerData } from "node:worker_threads";
import { ApiError } from "../errors.ts";
import { type ParseLimits, parseFile, warmUp } from "./extract.ts";

/** What pool.ts sends: one file; its bytes are transferred, not copied. */
export interface ParseRequest {
  id: number;
  kind: "pdf" | "docx";
  bytes: Uint8Array;
}

/** What the thread answers: the text, or the error's code and message (an ApiError does not cross threads). */
export type ParseReply =
  | { ready: true }
  | { id: number; text: string }
  | { id: number; error: { code: ApiError["code"]; message: string } };

// An extraction thread: parses one file at a time, as pool.ts hands them out, under the limits it was started with.
const port = parentPort;
if (!port) throw new Error("producer/extraction/thread.ts runs as a worker thread (pool.ts starts it)");
const limits = workerData as ParseLimits;
port.on("message", async ({ id, kind, bytes }: ParseRequest) => {
  let reply: ParseReply;
  try {
    reply = { id, text: await parseFile(kind, bytes, limits) };
  } catch (err) {
    const e = err instanceof ApiError ? err : new ApiError("validation_failed", `could not read the ${kind} file`);
    reply = { id, error: { code: e.code, message: e.message } };
  }
  port.postMessage(reply);
});
await warmUp();
port.postMessage({ ready: true } satisfies ParseReply);
