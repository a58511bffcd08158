import { once } from "node:events";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";

export interface ReceivedRequest {
  headers: IncomingHttpHeaders;
  body: string;
}

export interface Receiver {
  url: string;
  port: number;
  requests: ReceivedRequest[];
  /** Status (and headers) for the n-th request (0-based); 200 unless set. */
  reply: (n: number) => { status: number; headers?: Record<string, string> };
  close(): Promise<void>;
}

/** A real webhook receiver on 127.0.0.1 (a free port, or the one given). */
export async function startReceiver(port = 0): Promise<Receiver> {
  const requests: ReceivedRequest[] = [];
  const receiver: Receiver = {
    url: "",
    port: 0,
    requests,
    reply: () => ({ status: 200 }),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const n = requests.length;
    requests.push({ headers: req.headers, body: Buffer.concat(chunks).toString("utf8") });
    const { status, headers } = receiver.reply(n);
    res.writeHead(status, headers).end();
  });
  server.listen(port, "127.0.0.1");
  await once(server, "listening");
  receiver.port = (server.address() as AddressInfo).port;
  receiver.url = `http://127.0.0.1:${receiver.port}`;
  return receiver;
}
