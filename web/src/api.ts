// The dashboard's one way to the server: the same JSON routes the CLI and scripts use (/auth,
// /admin/v1, /api/v1/me), with the session cookie and, on every change, the session's CSRF token.
// Errors come back as ApiError with the server's message, which the pages show as text.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface Session {
  kind: 'person' | 'installation';
  user: { id: string; name: string; email: string | null; role: string } | null;
  role: string;
  method: string;
  csrf_token: string;
  expires_at: string;
}

let csrf: string | null = null;

/** Remembers the CSRF token of the signed-in session (from /auth/session or a sign-in answer). */
export function useCsrf(token: string | null): void {
  csrf = token;
}

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export async function call<T>(method: Method, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && csrf) headers['x-csrf-token'] = csrf;
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers,
      credentials: 'same-origin',
      cache: 'no-store',
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  } catch {
    throw new ApiError(0, 'unreachable', 'Tollgate did not answer; check the connection and try again.');
  }
  const text = await response.text();
  const data: unknown = text ? safeJson(text) : null;
  if (response.ok) return data as T;
  throw toError(response.status, data);
}

export const get = <T>(path: string) => call<T>('GET', path);

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

function toError(status: number, data: unknown): ApiError {
  const error = (data as { error?: { code?: string; message?: string } } | null)?.error;
  const message = error?.message ?? `request failed (HTTP ${status})`;
  return new ApiError(status, error?.code ?? 'error', message);
}

/** A query string from the defined values, in order. */
export function query(params: Record<string, string | number | undefined | null>): string {
  const search = new URLSearchParams();
  for (const [k, v] of Object.entries(params))
    if (v !== undefined && v !== null && v !== '') search.set(k, String(v));
  const text = search.toString();
  return text ? `?${text}` : '';
}

/** The current session, or null when signed out. */
export async function currentSession(): Promise<Session | null> {
  try {
    const session = await get<Session>('/auth/session');
    useCsrf(session.csrf_token);
    return session;
  } catch (error) {
    if (error instanceof ApiError && (error.status === 401 || error.status === 403)) return null;
    throw error;
  }
}

/** Ends this session and goes to the sign-in page. */
export async function signOut(): Promise<void> {
  await call('POST', '/auth/logout', {}).catch(() => undefined);
  useCsrf(null);
  location.assign('/login');
}
