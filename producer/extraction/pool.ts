import { Worker } from "node:worker_threads";
import type { Logger } from "../../runtime/log.ts";
import { ApiError } from "../errors.ts";
import type { Extracted, ParseLimits } from "./extract.ts";
import { kindOf, READABLE } from "./kind.ts";
import type { ParseReply, ParseRequest } from "./thread.ts";

export interface ExtractionOptions extends ParseLimits {
  /** Threads parsing PDF and DOCX files at once (DOCKET_EXTRACT_THREADS). */
  threads: number;
  /** Files waiting for a thread, at most (DOCKET_EXTRACT_QUEUE); past it extract() answers 429 backpressure. */
  queue: number;
  /** Longest one file may take on its thread; the thread is terminated past it (DOCKET_EXTRACT_TIMEOUT_MS). */
  timeoutMs: number;
  /** Longest one file may take once it needs OCR, counted from the start of its OCR (DOCKET_OCR_TIMEOUT_MS). */
  ocrTimeoutMs: number;
  /** JavaScript heap of one thread (DOCKET_EXTRACT_MEMORY_BYTES). */
  memoryBytes: number;
}

export interface UploadedFile {
  name: string;
  /** MIME type as the client sent it; may be empty. */
  type: string;
  /** Moved to the extraction thread, not copied: a PDF's or DOCX's array is detached (unusable) afterwards. */
  bytes: Uint8Array;
}

interface Task {
  id: number;
  kind: "pdf" | "docx" | "image";
  bytes: Uint8Array;
  resolve(extracted: Extracted): void;
  reject(err: ApiError): void;
}

interface Thread {
  worker: Worker;
  /** stopping: terminated after a timeout, or dead; it takes no file and is replaced once it has exited. */
  state: "starting" | "ready" | "stopping";
  task?: Task;
  timer?: NodeJS.Timeout;
}

const ENTRY = new URL("./thread-entry.mjs", import.meta.url);

/**
 * Extracts the text of uploaded files. PDF and DOCX are parsed, and scanned pages and images read by OCR, on a
 * bounded pool of worker threads, never on the API's event loop: a 10,000-page PDF or a DOCX zip bomb once froze
 * every request for tens of seconds. Each file runs under limits (pages, uncompressed bytes, pixels: checked on the
 * thread before the costly part; time: the thread is terminated; heap: the thread dies), and each limit has its
 * error code, as has each way a file can be unusable. txt and md are decoded here (cheap).
 * The threads keep the process alive until close().
 */
export class ExtractionPool {
  private readonly threads = new Set<Thread>();
  private readonly waiting: Task[] = [];
  private nextId = 0;
  private closed = false;
  /** Set when a thread failed to start: no more are started until the next file asks. */
  private startError?: string;

  constructor(
    private readonly options: ExtractionOptions,
    private readonly log: Logger,
  ) {}

  /**
   * The file's text (and the pages OCR read); throws ApiError (naming the file, field `files[<name>]`) when it is
   * refused or unusable: unsupported_file_type, invalid_utf8, unreadable_file, empty_document, scanned_document
   * (OCR off), or the code of the limit it breaks.
   */
  async extract(file: UploadedFile): Promise<Extracted> {
    const extracted = await this.read(file);
    if (extracted.text.trim() === "")
      throw new ApiError("empty_document", `${file.name}: the file holds no text`, `files[${file.name}]`);
    return extracted;
  }

  private async read(file: UploadedFile): Promise<Extracted> {
    const field = `files[${file.name}]`;
    const kind = kindOf(file.name, file.type);
    // pdf.js waits for more data on an empty file instead of failing: it would hold a thread until its time limit.
    if (kind && file.bytes.byteLength === 0) return { text: "" };
    if (!kind)
      throw new ApiError(
        "unsupported_file_type",
        `${file.name}: unsupported file type${file.type ? ` "${file.type}"` : ""}; send ${READABLE}`,
        field,
      );
    if (kind === "text") {
      try {
        return { text: new TextDecoder("utf-8", { fatal: true }).decode(file.bytes) };
      } catch {
        throw new ApiError("invalid_utf8", `${file.name}: the text is not valid UTF-8; save it as UTF-8`, field);
      }
    }
    if (kind === "image" && !this.options.ocr)
      throw new ApiError("scanned_document", `${file.name}: this is an image; OCR is off (DOCKET_OCR)`, field);
    if (this.closed) throw new ApiError("unavailable", "the producer is shutting down; retry against another one");
    if (this.queued() >= this.options.queue)
      throw new ApiError(
        "backpressure",
        `${this.queued()} files are waiting for text extraction (DOCKET_EXTRACT_QUEUE); retry later`,
        field,
        { "retry-after": "5" },
      );
    this.startError = undefined;
    return new Promise<Extracted>((resolve, reject) => {
      this.waiting.push({ id: this.nextId++, kind, bytes: file.bytes, resolve, reject });
      this.dispatch();
    }).catch((err: ApiError) => {
      throw new ApiError(err.code, `${file.name}: ${err.message}`, field, err.headers);
    });
  }

  /**
   * Starts the threads now rather than on the first upload, which would otherwise wait for one (a thread takes
   * about half a second of CPU to load pdf.js and mammoth, and holds about 45 MiB). Threads stopped after a
   * timeout are replaced at once.
   */
  start(): void {
    this.dispatch();
  }

  /** Stops taking files, fails the waiting ones, terminates the threads (a file being parsed fails too). */
  async close(): Promise<void> {
    this.closed = true;
    for (const task of this.waiting.splice(0)) task.reject(new ApiError("unavailable", "the producer is shutting down"));
    await Promise.all([...this.threads].map((t) => t.worker.terminate()));
  }

  /** Files that no thread (idle, starting, or yet to start) is there to take. */
  private queued(): number {
    const threads = [...this.threads];
    const free = threads.filter((t) => t.state === "starting" || (t.state === "ready" && !t.task)).length;
    return Math.max(0, this.waiting.length - free - (this.options.threads - threads.length));
  }

  /** Hands waiting files to idle threads, and starts threads up to the limit. */
  private dispatch(): void {
    for (const thread of this.threads) {
      if (this.waiting.length === 0) break;
      if (thread.state === "ready" && !thread.task) this.run(thread, this.waiting.shift()!);
    }
    while (!this.closed && !this.startError && this.threads.size < this.options.threads) this.spawn();
  }

  private run(thread: Thread, task: Task): void {
    thread.task = task;
    this.arm(thread, task.kind === "image");
    // The bytes move to the thread instead of being copied; a view into a larger or shared buffer is copied first.
    const { bytes } = task;
    const own = bytes.buffer instanceof ArrayBuffer && bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength;
    const request: ParseRequest = { id: task.id, kind: task.kind, bytes: own ? bytes : bytes.slice() };
    thread.worker.postMessage(request, [request.bytes.buffer as ArrayBuffer]);
  }

  /** (Re)starts the thread's time limit: DOCKET_EXTRACT_TIMEOUT_MS, or DOCKET_OCR_TIMEOUT_MS once the file needs OCR. */
  private arm(thread: Thread, ocr: boolean): void {
    clearTimeout(thread.timer);
    const [ms, setting] = ocr
      ? [this.options.ocrTimeoutMs, "DOCKET_OCR_TIMEOUT_MS"]
      : [this.options.timeoutMs, "DOCKET_EXTRACT_TIMEOUT_MS"];
    thread.timer = setTimeout(() => {
      this.log.warn({ code: "extraction_timeout", timeoutMs: ms, ocr }, "extraction thread terminated");
      thread.state = "stopping";
      this.settle(
        thread,
        new ApiError(
          "extraction_timeout",
          `extracting its text${ocr ? " by OCR" : ""} took longer than ${ms} ms (${setting}); send a smaller or simpler file`,
        ),
      );
      void thread.worker.terminate();
    }, ms);
  }

  /** Ends the thread's current file with its text or an error. */
  private settle(thread: Thread, outcome: Extracted | ApiError): void {
    const task = thread.task;
    clearTimeout(thread.timer);
    thread.task = undefined;
    if (!task) return;
    if (outcome instanceof ApiError) task.reject(outcome);
    else task.resolve(outcome);
  }

  private spawn(): void {
    const { maxPages, maxUncompressedBytes, ocr, maxOcrPages, memoryBytes } = this.options;
    const worker = new Worker(ENTRY, {
      workerData: { maxPages, maxUncompressedBytes, ocr, maxOcrPages } satisfies ParseLimits,
      resourceLimits: { maxOldGenerationSizeMb: Math.max(16, Math.floor(memoryBytes / 2 ** 20)) },
    });
    const thread: Thread = { worker, state: "starting" };
    this.threads.add(thread);
    worker.on("message", (reply: ParseReply) => {
      if ("ready" in reply) {
        if (thread.state === "starting") thread.state = "ready";
      } else if (reply.id === thread.task?.id) {
        // (A reply for a file that timed out matches no task.)
        if ("ocr" in reply) this.arm(thread, true);
        else if ("error" in reply) this.settle(thread, new ApiError(reply.error.code, reply.error.message));
        else this.settle(thread, { text: reply.text, ...(reply.ocrPages ? { ocrPages: reply.ocrPages } : {}) });
      }
      this.dispatch();
    });
    worker.on("error", (err: Error & { code?: string }) => {
      const started = thread.state !== "starting";
      thread.state = "stopping";
      if (!started) {
        this.startError = err.message;
        this.log.error({ err: err.message }, "an extraction thread could not start");
      } else if (err.code === "ERR_WORKER_OUT_OF_MEMORY") {
        this.settle(
          thread,
          new ApiError(
            "extraction_out_of_memory",
            `extracting its text needed more than ${memoryBytes} bytes of memory (DOCKET_EXTRACT_MEMORY_BYTES); send a smaller or simpler file`,
          ),
        );
      } else {
        this.log.error({ err: err.message }, "an extraction thread failed");
        this.settle(thread, new ApiError("internal", "the extraction thread failed"));
      }
    });
    worker.on("exit", () => {
      this.threads.delete(thread);
      this.settle(
        thread,
        this.closed
          ? new ApiError("unavailable", "the producer is shutting down")
          : new ApiError("internal", "the extraction thread stopped"),
      );
      if (this.startError && this.threads.size === 0)
        for (const task of this.waiting.splice(0))
          task.reject(new ApiError("internal", `text extraction is unavailable (${this.startError})`));
      this.dispatch();
    });
  }
}
