import { existsSync } from "node:fs";
import { createModelDownloader } from "node-llama-cpp";

export interface PullOptions {
  /** hf:<user>/<repo>:<quant>, hf:<user>/<repo>/<file>, or an http(s) URL. */
  uri: string;
  directory: string;
  /** Overrides https://huggingface.co (a mirror; a local server in tests). */
  huggingFaceEndpoint?: string;
  onProgress?: (p: { downloadedSize: number; totalSize: number }) => void;
  signal?: AbortSignal;
}

/** Suffix of a download in progress: the partial file with ipull's resume metadata after its bytes. */
export const PARTIAL_SUFFIX = ".ipull";

/**
 * Downloads a model into `directory` and returns its path. An interrupted download leaves `<file>.ipull`
 * and the next pull resumes it with HTTP Range requests; a finished file is not fetched again.
 */
export async function pullModel(o: PullOptions): Promise<{ path: string; skipped: boolean }> {
  const downloader = await createModelDownloader({
    modelUri: o.uri,
    dirPath: o.directory,
    showCliProgress: false,
    deleteTempFileOnCancel: false,
    // ipull's skipExisting writes straight to the final name with no resume metadata: a finished file is
    // recognised here instead (final name present, no partial beside it).
    skipExisting: false,
    ...(o.huggingFaceEndpoint ? { endpoints: { huggingFace: o.huggingFaceEndpoint } } : {}),
    ...(o.onProgress ? { onProgress: o.onProgress } : {}),
  });
  const path = downloader.entrypointFilePath;
  if (downloader.totalFiles === 1 && existsSync(path) && !existsSync(path + PARTIAL_SUFFIX)) {
    await downloader.cancel({ deleteTempFile: false });
    return { path, skipped: true };
  }
  await downloader.download(o.signal ? { signal: o.signal } : undefined);
  // node-llama-cpp 3.21 resolves an aborted download instead of rejecting it.
  if (o.signal?.aborted) throw o.signal.reason ?? new Error("download aborted");
  return { path, skipped: false };
}
