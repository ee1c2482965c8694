// One request/response pair and its ServedRecord, appended to `served` exactly once when its outcome is known.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { PresentedKey } from './auth.js';
import type { ServedOutcome, ServedRecord } from './types.js';

export interface Exchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly requestId: string;
  readonly record: ServedRecord;
  readonly settled: boolean;
  /** Sets status and outcome and appends the record; later calls are ignored. */
  settle(status: number, outcome: ServedOutcome): void;
}

function rawHeaders(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] ?? '').toLowerCase();
    const value = raw[i + 1] ?? '';
    const previous = out[name];
    out[name] = previous === undefined ? value : `${previous}, ${value}`;
  }
  return out;
}

function splitList(value: string | undefined): string[] {
  if (!value) return [];
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

export function createExchange(
  req: IncomingMessage,
  res: ServerResponse,
  requestId: string,
  path: string,
  query: Record<string, string>,
  key: PresentedKey,
  at: number,
  served: ServedRecord[],
): Exchange {
  const headers = rawHeaders(req);
  const record: ServedRecord = {
    requestId,
    at,
    method: req.method ?? 'GET',
    path,
    query,
    apiKey: key.key,
    headers: {
      anthropicVersion: headers['anthropic-version'] ?? null,
      anthropicBeta: splitList(headers['anthropic-beta']),
      ...(key.via ? { authorization: key.via } : {}),
    },
    rawHeaders: headers,
    stream: false,
    status: 0,
    outcome: 'error',
    outputTokensSent: 0,
  };
  let settled = false;
  const exchange: Exchange = {
    req,
    res,
    requestId,
    record,
    get settled() {
      return settled;
    },
    settle(status, outcome) {
      if (settled) return;
      settled = true;
      record.status = status;
      record.outcome = outcome;
      served.push(record);
    },
  };
  // A close before the response ended is the client going away (or close() destroying the socket).
  res.on('close', () => {
    if (!settled && !res.writableEnded)
      exchange.settle(res.headersSent ? res.statusCode : 0, 'client-aborted');
  });
  return exchange;
}
