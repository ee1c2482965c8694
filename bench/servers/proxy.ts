// The honest baseline: a minimal pass-through proxy in a process of its own, `node proxy.js UPSTREAM_URL`.
// node:http in front, one undici Pool behind (the same pool settings as Tollgate's upstream); the
// request body is read whole (as any gateway must, to look at it — and measured faster here than
// streaming it on), the answer is streamed back chunk by chunk as it arrives. No auth, no policy, no
// accounting: what any Node gateway costs before it does any work. Kept lean on purpose, so the ratios
// against it are not flattered: no AbortController (a client that leaves mid-answer destroys the upstream
// body, which aborts the request) and no stream.pipeline (it allocates an AbortController and a
// DOMException per call). Prints `listening on URL`.
import './guard.js';
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Dispatcher, Pool } from 'undici';

const upstream = process.argv[2];
if (!upstream) {
  process.stderr.write('usage: proxy.js UPSTREAM_URL [PORT]\n');
  process.exit(2);
}
const port = Number(process.argv[3] ?? '0');

const pool = new Pool(upstream, { connections: 256, pipelining: 1, keepAliveTimeout: 30_000 });

// Hop-by-hop headers (RFC 9110 §7.6.1) and Host are the connection's own, never forwarded.
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'host',
]);

function requestHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name)) continue;
    out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

function responseHeaders(headers: Dispatcher.ResponseData['headers']): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name)) continue;
    out[name] = value;
  }
  return out;
}

const METHODS = new Set<Dispatcher.HttpMethod>(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

function isMethod(method: string | undefined): method is Dispatcher.HttpMethod {
  return method !== undefined && METHODS.has(method as Dispatcher.HttpMethod);
}

/** The request body, read whole: a gateway must read it before deciding anything, and it is small. */
function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(chunks.length === 1 && chunks[0] ? chunks[0] : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

async function forward(
  req: IncomingMessage,
  res: ServerResponse,
  method: Dispatcher.HttpMethod,
): Promise<void> {
  const body = method === 'GET' || method === 'HEAD' ? null : await readBody(req);
  const answer = await pool.request({
    method,
    path: req.url ?? '/',
    headers: requestHeaders(req.headers),
    body,
  });
  // The client went away before the answer was complete: stop the upstream request too.
  res.on('close', () => {
    if (!res.writableFinished) answer.body.destroy();
  });
  res.writeHead(answer.statusCode, responseHeaders(answer.headers));
  // Streamed through chunk by chunk as it arrives (SSE events included), with backpressure.
  for await (const chunk of answer.body) {
    if (res.destroyed) break;
    if (!res.write(chunk)) await drained(res);
  }
  res.end();
}

function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

const server = createServer((req, res) => {
  const method = req.method;
  if (!isMethod(method)) {
    res.writeHead(405).end();
    return;
  }
  forward(req, res, method).catch(() => {
    if (!res.headersSent) {
      res.writeHead(502, { 'content-type': 'application/json' });
      res.end('{"type":"error","error":{"type":"api_error","message":"upstream failed"}}');
    } else {
      res.destroy();
    }
  });
});

server.listen(port, '127.0.0.1', () => {
  const { port: bound } = server.address() as AddressInfo;
  process.stdout.write(`listening on http://127.0.0.1:${bound}\n`);
});

const stop = (): void => {
  server.close();
  server.closeAllConnections();
  // Nothing to flush: give the pool a moment to close politely, then go.
  setTimeout(() => process.exit(0), 1_000).unref();
  void pool.close().finally(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
