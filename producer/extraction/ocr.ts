import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Worker as TesseractWorker } from "tesseract.js";
import { ApiError } from "../errors.ts";

/*
 * OCR with tesseract.js (Tesseract compiled to WebAssembly) and the English model of @tesseract.js-data/eng, both npm
 * dependencies: `npm install` brings the engine and its language data, and nothing is downloaded at run time
 * (langPath is a folder in node_modules; tesseract.js fetches from a CDN only when langPath is left unset).
 * tesseract.js runs each engine on a worker thread of its own: started from an extraction thread, it is that
 * thread's child, so terminating the extraction thread (a file past its time limit) terminates the engine too, and
 * it inherits the thread's lower priority (nice is per thread on Linux, inherited at creation).
 */

const LANGUAGE = "eng";
/** The LSTM-only integer model: about 3 MB against 11 MB for the full one, as accurate on print, faster to load. */
const MODEL_DIR = "4.0.0_best_int";

/** Why OCR cannot run here (a package missing from node_modules), or undefined when it can. Cheap: nothing is loaded. */
export function ocrEngineMissing(): string | undefined {
  for (const pkg of ["tesseract.js", "@tesseract.js-data/eng/package.json", "@napi-rs/canvas"]) {
    try {
      import.meta.resolve(pkg);
    } catch {
      return `${pkg.replace("/package.json", "")} is not installed (npm install)`;
    }
  }
  return undefined;
}

/**
 * DOCKET_OCR resolved: `auto` is on when the engine is installed. `true` without the engine is a start-up error with
 * a code (the service ends with one line); `missing` says why `auto` turned it off.
 */
export function resolveOcr(setting: "auto" | "true" | "false"): { enabled: boolean; missing?: string } {
  if (setting === "false") return { enabled: false };
  const missing = ocrEngineMissing();
  if (missing && setting === "true")
    throw Object.assign(new Error(`DOCKET_OCR=true but ${missing}; install it, or set DOCKET_OCR=false`), {
      code: "ocr_unavailable",
    });
  return missing ? { enabled: false, missing } : { enabled: true };
}

/** One extraction thread's OCR engine, started on the first scanned page and kept for the thread's life. */
export class OcrEngine {
  private worker?: Promise<TesseractWorker>;

  /** The text Tesseract reads in an encoded image (PNG, JPEG, TIFF). */
  async recognize(image: Uint8Array): Promise<string> {
    const worker = await this.start();
    try {
      const { data } = await worker.recognize(Buffer.from(image.buffer, image.byteOffset, image.byteLength));
      return data.text;
    } catch (err) {
      throw new ApiError("unreadable_file", `the OCR engine could not read the image (${String(err)})`);
    }
  }

  private start(): Promise<TesseractWorker> {
    this.worker ??= (async () => {
      const { createWorker, OEM } = await import("tesseract.js");
      const langPath = join(
        dirname(fileURLToPath(import.meta.resolve(`@tesseract.js-data/${LANGUAGE}/package.json`))),
        MODEL_DIR,
      );
      return createWorker(LANGUAGE, OEM.LSTM_ONLY, {
        langPath,
        // No cache: tesseract.js would otherwise write eng.traineddata into the working directory.
        cacheMethod: "none",
        // A failed job rejects its promise; without a handler tesseract.js also throws on this thread.
        errorHandler: () => undefined,
      });
    })();
    this.worker.catch(() => {
      this.worker = undefined;
    });
    return this.worker;
  }
}
