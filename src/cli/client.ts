// How CLI commands reach the admin API's operations: in-process on the local database, or over HTTP
// to a remote server (`--server URL` / TOLLGATE_SERVER with TOLLGATE_ADMIN_TOKEN). Both validate with
// the same schemas and return the same JSON, so a command prints the same output and exits with the
// same status either way.
import { request } from 'undici';
import type { OpContext, Operation, RawInput } from '../api/operation.js';
import { parseInput } from '../api/validation.js';
import { AppError, ERROR_CODES, type ErrorCode } from '../lib/errors.js';

export interface ApiClient {
  /** `remote: URL` or `local`, for messages. */
  readonly where: string;
  call<T>(op: Operation, input?: RawInput): Promise<T>;
  /** Every row of a paginated list operation, page after page. */
  all<T>(op: Operation, input?: RawInput): Promise<T[]>;
}

/** Most pages one `all` call fetches (500 rows each): a runaway server cannot keep the CLI looping. */
const MAX_PAGES = 1_000;

function withPaging(call: ApiClient['call']): ApiClient['all'] {
  return async <T>(op: Operation, input: RawInput = {}) => {
    const rows: T[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const query = { ...input.query, limit: '500', ...(cursor ? { cursor } : {}) };
      const answer = await call<{ items: T[]; next_cursor: string | null }>(op, { ...input, query });
      rows.push(...answer.items);
      if (!answer.next_cursor) return rows;
      cursor = answer.next_cursor;
    }
    throw new AppError('internal', 'the list did not end after 1000 pages');
  };
}

/** Runs operations in this process, with the same validation and the JSON a server would send. */
export function localClient(ctx: OpContext): ApiClient {
  const call = async <T>(op: Operation, input: RawInput = {}): Promise<T> => {
    const parsed = parseInput(op, { ...input, query: stringified(input.query) });
    const result = await op.run(ctx, parsed);
    return JSON.parse(JSON.stringify(result ?? null)) as T;
  };
  return { where: 'local', call, all: withPaging(call) };
}

/** Calls a remote Tollgate's admin API. */
export function remoteClient(server: string, token: string, timeoutMs = 30_000): ApiClient {
  const base = serverUrl(server);
  const call = async <T>(op: Operation, input: RawInput = {}): Promise<T> => {
    const url = new URL(base.href);
    url.pathname = `${base.pathname.replace(/\/$/, '')}${expandPath(op.path, input.params ?? {})}`;
    for (const [name, value] of Object.entries(stringified(input.query)))
      if (value !== undefined) url.searchParams.set(name, value);
    const hasBody = op.body !== null;
    let answer: Awaited<ReturnType<typeof request>>;
    try {
      answer = await request(url, {
        method: op.method,
        headers: {
          authorization: `Bearer ${token}`,
          accept: 'application/json',
          ...(hasBody ? { 'content-type': 'application/json' } : {}),
        },
        body: hasBody ? JSON.stringify(input.body ?? {}) : null,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      throw new AppError(
        'upstream_unreachable',
        `cannot reach the Tollgate server at ${base.origin}${typeof code === 'string' ? ` (${code})` : ''}`,
      );
    }
    const text = await answer.body.text();
    if (answer.statusCode >= 200 && answer.statusCode < 300)
      return (text === '' ? null : JSON.parse(text)) as T;
    throw remoteError(answer.statusCode, text, base.origin);
  };
  return { where: base.origin, call, all: withPaging(call) };
}

export function serverUrl(server: string): URL {
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new AppError(
      'invalid_input',
      `--server must be a URL such as https://tollgate.example.com (got ${JSON.stringify(server.slice(0, 80))})`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new AppError('invalid_input', '--server must be an http:// or https:// URL');
  if (url.username || url.password || url.search || url.hash)
    throw new AppError('invalid_input', '--server must not carry credentials, a query or a fragment');
  return url;
}

function expandPath(path: string, params: Record<string, string>): string {
  return path.replace(/\{([A-Za-z_]+)\}/g, (_m, name: string) => {
    const value = params[name];
    if (value === undefined) throw new AppError('internal', `missing path parameter ${name}`);
    return encodeURIComponent(value);
  });
}

function stringified(query: Record<string, unknown> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined && v !== null) out[k] = String(v);
  return out;
}

/** A server's error answer as the AppError local mode would have thrown (same message, same exit status). */
function remoteError(status: number, text: string, origin: string): AppError {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = null;
  }
  const error = (parsed as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  const code = ERROR_CODES.find((c) => c === error?.code) as ErrorCode | undefined;
  if (code && typeof error?.message === 'string') return new AppError(code, error.message);
  if (status === 404)
    return new AppError(
      'not_found',
      `${origin} has no such admin route (is it a Tollgate server of this version?)`,
    );
  return new AppError('upstream_error', `the Tollgate server at ${origin} answered ${status}`);
}
