import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface FileServer {
  url: string;
  /** Every request, in order: method, path and Range header. */
  requests: { method: string; path: string; range?: string }[];
  /** File bytes sent so far, over every response. */
  sentBytes(): number;
  close(): Promise<void>;
}

export interface FileServerOptions {
  /** URL path → file on disk. */
  files: Record<string, string>;
  /** JSON documents served as-is (e.g. a Hugging Face manifest). */
  json?: Record<string, unknown>;
  /** Cut this many first GETs of a file after `cutAfterBytes` bytes (a dropped connection). */
  cutFirstGets?: number;
  cutAfterBytes?: number;
  /** Once this many file bytes were sent in all, every response stops sending and hangs (a stalled network). */
  stallAfterTotalBytes?: number;
  /** Pause this long after each 64 KiB sent (a slow network); read on every chunk, so it can be lifted. */
  chunkDelayMs?: number;
}

/** A local HTTP file server with Range support (node:http) that can drop connections mid-file. */
export async function startFileServer(o: FileServerOptions): Promise<FileServer> {
  const requests: FileServer["requests"] = [];
  let cuts = o.cutFirstGets ?? 0;
  let sent = 0;
  const server: Server = createServer(async (req, res) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    requests.push({ method: req.method ?? "GET", path, ...(req.headers.range ? { range: req.headers.range } : {}) });
    if (o.json && path in o.json) {
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(o.json[path]));
      return;
    }
    const file = o.files[path];
    if (!file) return void res.writeHead(404).end("not found");
    const { size } = await stat(file);
    let start = 0;
    let end = size - 1;
    const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? "");
    if (m) {
      start = Number(m[1]);
      end = m[2] ? Math.min(Number(m[2]), size - 1) : size - 1;
      if (start > end) return void res.writeHead(416, { "content-range": `bytes */${size}` }).end();
    }
    const headers = {
      "content-type": "application/octet-stream",
      "accept-ranges": "bytes",
      "content-length": String(end - start + 1),
      etag: `"${size}"`,
      ...(m ? { "content-range": `bytes ${start}-${end}/${size}` } : {}),
    };
    res.writeHead(m ? 206 : 200, headers);
    if (req.method === "HEAD") return void res.end();
    if (cuts > 0) {
      cuts--;
      const limit = Math.max(1, Math.min(o.cutAfterBytes ?? Math.floor(size / 2), end - start));
      const stream = createReadStream(file, { start, end: start + limit - 1 });
      stream.on("data", (chunk) => res.write(chunk));
      stream.on("end", () => setTimeout(() => res.destroy(), 20));
      return;
    }
    const stream = createReadStream(file, { start, end, highWaterMark: 64 * 1024 });
    stream.on("data", (data) => {
      const chunk = data as Buffer;
      const budget = (o.stallAfterTotalBytes ?? Number.POSITIVE_INFINITY) - sent;
      if (budget <= 0) return void stream.destroy();
      const part = chunk.length > budget ? chunk.subarray(0, budget) : chunk;
      sent += part.length;
      res.write(part);
      if (o.chunkDelayMs) {
        stream.pause();
        setTimeout(() => stream.resume(), o.chunkDelayMs);
      }
      if (part.length < chunk.length) stream.destroy();
    });
    stream.on("end", () => res.end());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    sentBytes: () => sent,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
