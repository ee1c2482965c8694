// CORS for the admin and self-service APIs, off unless server.cors_origins lists exact origins. Only a
// listed origin is ever echoed (never `*`, never an arbitrary Origin), and never with
// Access-Control-Allow-Credentials: a listed site calls with its own bearer token; the dashboard's
// cookie session stays same-origin.

export const CORS_METHODS = 'GET, POST, PUT, PATCH, DELETE';
export const CORS_REQUEST_HEADERS = 'authorization, content-type, x-api-key';
export const CORS_EXPOSED_HEADERS = 'request-id, retry-after';
/** How long a browser may reuse a preflight answer, in seconds. */
export const CORS_MAX_AGE_S = '600';

export type Header = readonly [string, string];

/** The headers an answer to `origin` carries; empty when the origin is absent or not listed. */
export function corsHeaders(allowed: ReadonlySet<string>, origin: string | undefined): Header[] {
  if (origin === undefined || !allowed.has(origin)) return [];
  return [
    ['access-control-allow-origin', origin],
    ['access-control-expose-headers', CORS_EXPOSED_HEADERS],
  ];
}

/** A preflight's answer headers, or null when it is not a preflight from a listed origin. */
export function preflightHeaders(
  allowed: ReadonlySet<string>,
  origin: string | undefined,
  requestMethod: string | undefined,
): Header[] | null {
  if (requestMethod === undefined || origin === undefined || !allowed.has(origin)) return null;
  return [
    ['access-control-allow-origin', origin],
    ['access-control-allow-methods', CORS_METHODS],
    ['access-control-allow-headers', CORS_REQUEST_HEADERS],
    ['access-control-max-age', CORS_MAX_AGE_S],
  ];
}

/** `Vary` with Origin added once to whatever the route already set (e.g. accept-encoding). */
export function varyWithOrigin(current: string | number | string[] | undefined): string {
  const text = Array.isArray(current) ? current.join(', ') : current === undefined ? '' : String(current);
  if (text === '') return 'Origin';
  return /(^|,)\s*(origin|\*)\s*(,|$)/i.test(text) ? text : `${text}, Origin`;
}
