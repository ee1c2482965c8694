// A local OTLP/HTTP collector stub (plain node:http) that keeps every payload the exporter POSTs to
// /v1/metrics (JSON, as @opentelemetry/exporter-metrics-otlp-http sends it). It can be stopped and
// started again on the same port, or told to never answer.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface OtlpAttribute {
  key: string;
  value: { stringValue?: string; intValue?: string | number; doubleValue?: number; boolValue?: boolean };
}
export interface OtlpPoint {
  attributes?: OtlpAttribute[];
  asInt?: string | number;
  asDouble?: number;
  startTimeUnixNano?: string | number;
  timeUnixNano?: string | number;
  count?: string | number;
  sum?: number;
  bucketCounts?: (string | number)[];
  explicitBounds?: number[];
}
export interface OtlpMetric {
  name: string;
  unit?: string;
  sum?: { dataPoints: OtlpPoint[]; aggregationTemporality?: number; isMonotonic?: boolean };
  histogram?: { dataPoints: OtlpPoint[]; aggregationTemporality?: number };
}
export interface OtlpPayload {
  resourceMetrics: {
    resource?: { attributes?: OtlpAttribute[] };
    scopeMetrics: {
      scope?: { name?: string; version?: string };
      schemaUrl?: string;
      metrics: OtlpMetric[];
    }[];
  }[];
}

export interface Received {
  readonly at: number;
  readonly contentType: string;
  readonly payload: OtlpPayload;
}

export type CollectorMode = 'ok' | 'hang';

export interface Collector {
  readonly url: string;
  readonly received: Received[];
  /** Requests that arrived (answered or not). */
  arrivals: number;
  mode: CollectorMode;
  /** Stops listening (connections refused) until start(). */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Resolves once `n` payloads have been received in all, or rejects after `timeoutMs`. */
  waitFor(n: number, timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}

export async function startCollector(mode: CollectorMode = 'ok'): Promise<Collector> {
  const received: Received[] = [];
  const sockets = new Set<Socket>();
  let port = 0;
  let server: Server | null = null;

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    collector.arrivals++;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (collector.mode === 'hang') return; // never answers
      if (req.method !== 'POST' || req.url !== '/v1/metrics') {
        res.writeHead(404).end();
        return;
      }
      received.push({
        at: Date.now(),
        contentType: String(req.headers['content-type'] ?? ''),
        payload: JSON.parse(Buffer.concat(chunks).toString('utf8')) as OtlpPayload,
      });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  };

  async function start(): Promise<void> {
    const s = createServer(handle);
    s.on('connection', (socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => resolve());
    });
    port = (s.address() as AddressInfo).port;
    server = s;
  }

  async function stop(): Promise<void> {
    const s = server;
    server = null;
    if (!s) return;
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  await start();
  const collector: Collector = {
    url: `http://127.0.0.1:${port}`,
    received,
    arrivals: 0,
    mode,
    stop,
    start,
    async waitFor(n, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (received.length < n) {
        if (Date.now() > deadline) throw new Error(`collector: ${received.length} of ${n} payloads`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    close: stop,
  };
  return collector;
}

export function attrs(list: OtlpAttribute[] | undefined): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const a of list ?? []) {
    const v = a.value;
    out[a.key] =
      v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : (v.doubleValue ?? v.boolValue ?? ''));
  }
  return out;
}

/** Every metric of a payload, by name. */
export function metricsOf(payload: OtlpPayload): Map<string, OtlpMetric> {
  const out = new Map<string, OtlpMetric>();
  for (const rm of payload.resourceMetrics)
    for (const sm of rm.scopeMetrics) for (const m of sm.metrics) out.set(m.name, m);
  return out;
}

/** The sum of a Sum metric's points whose attributes include `where`. */
export function sumOf(payload: OtlpPayload, name: string, where: Record<string, string> = {}): number {
  const m = metricsOf(payload).get(name);
  return (m?.sum?.dataPoints ?? [])
    .filter((p) => {
      const a = attrs(p.attributes);
      return Object.entries(where).every(([k, v]) => a[k] === v);
    })
    .reduce((s, p) => s + Number(p.asInt ?? p.asDouble ?? 0), 0);
}
