// `--metrics`: Tollgate with its metrics on as an operator would run them — claude.otel_endpoint at an
// OTLP/HTTP collector stub in the runner (it answers 200 and counts what arrives) with a 1 s export
// interval, and GET /metrics scraped every second — so a run measures their cost on the hot path.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Managed } from './procs.js';

export interface MetricsSide {
  readonly url: string;
  /** Environment for a Tollgate process: the OTLP push to the stub every second. */
  readonly env: Readonly<Record<string, string>>;
  /** Scrapes `url`/metrics every second while `managed` lives. */
  scrape(url: string, managed: Managed): void;
  summary(): {
    payloads: number;
    payloadBytes: number;
    scrapes: number;
    scrapeFailures: number;
    /** The first few failures' reasons (status or error), for the report. */
    failureReasons: readonly string[];
  };
  close(): Promise<void>;
}

export async function startMetricsSide(): Promise<MetricsSide> {
  let payloads = 0;
  let payloadBytes = 0;
  let scrapes = 0;
  let scrapeFailures = 0;
  const failureReasons: string[] = [];
  const failed = (reason: string): void => {
    scrapeFailures++;
    if (failureReasons.length < 5) failureReasons.push(reason);
  };
  const timers: NodeJS.Timeout[] = [];
  const server: Server = createServer((req, res) => {
    req.on('data', (c: Buffer) => {
      payloadBytes += c.length;
    });
    req.on('end', () => {
      if (req.method === 'POST' && req.url === '/v1/metrics') payloads++;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    env: { TOLLGATE_CLAUDE_OTEL_ENDPOINT: url, TOLLGATE_CLAUDE_OTEL_INTERVAL_S: '1' },
    scrape(base, managed) {
      const timer = setInterval(() => {
        if (managed.exit) {
          clearInterval(timer);
          return;
        }
        fetch(`${base}/metrics`)
          .then(async (r) => {
            await r.arrayBuffer();
            if (r.status === 200) scrapes++;
            else if (!managed.exit) failed(`status ${r.status}`);
          })
          .catch((err: unknown) => {
            const cause = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : '';
            // A scrape that meets a server being stopped is not a failure: judged once it had time to exit.
            setTimeout(() => {
              if (!managed.exit) failed(`${err instanceof Error ? err.message : String(err)}${cause}`);
            }, 2000).unref();
          });
      }, 1000);
      timer.unref();
      timers.push(timer);
    },
    summary: () => ({ payloads, payloadBytes, scrapes, scrapeFailures, failureReasons }),
    async close() {
      for (const t of timers) clearInterval(t);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
