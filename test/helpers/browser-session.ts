// A browser's view of a Tollgate session in tests: the cookie it was given and the CSRF token the
// sign-in answer carried, and calls that send them the way a page of the dashboard would.
import type { ApiJson } from './gateway.js';

export interface SessionClient {
  /** `name=value` of the session cookie. */
  readonly cookie: string;
  /** The whole Set-Cookie header the sign-in answered with (attributes included). */
  readonly setCookie: string;
  readonly csrf: string;
  readonly json: ApiJson;
  /** Calls with the cookie; `csrf: false` leaves the CSRF header out, a string sends that instead. */
  call(
    method: string,
    path: string,
    options?: { body?: unknown; csrf?: boolean | string; headers?: Record<string, string> },
  ): Promise<{ status: number; json: ApiJson; headers: Headers }>;
}

export async function readJson(response: Response): Promise<ApiJson> {
  const text = await response.text();
  try {
    return text === '' ? null : JSON.parse(text);
  } catch {
    return text;
  }
}

/** Posts a JSON sign-in (or invite acceptance) and returns the session it opened; throws on refusal. */
export async function signIn(url: string, path: string, body: unknown): Promise<SessionClient> {
  const response = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const json = await readJson(response);
  if (response.status !== 200) throw new Error(`sign-in refused: ${response.status} ${JSON.stringify(json)}`);
  return sessionFrom(url, response.headers.get('set-cookie') ?? '', json.csrf_token, json);
}

export function sessionFrom(
  url: string,
  setCookie: string,
  csrf: string,
  json: ApiJson = null,
): SessionClient {
  const cookie = setCookie.split(';')[0] ?? '';
  return {
    cookie,
    setCookie,
    csrf,
    json,
    async call(method, path, o = {}) {
      const csrfHeader: Record<string, string> =
        o.csrf === false ? {} : { 'x-csrf-token': typeof o.csrf === 'string' ? o.csrf : csrf };
      const response = await fetch(`${url}${path}`, {
        method,
        headers: {
          cookie,
          ...csrfHeader,
          ...(o.body === undefined ? {} : { 'content-type': 'application/json' }),
          ...o.headers,
        },
        ...(o.body === undefined ? {} : { body: JSON.stringify(o.body) }),
      });
      return { status: response.status, json: await readJson(response), headers: response.headers };
    },
  };
}
