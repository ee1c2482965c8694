// The security headers of every answer outside the gateway's /v1/* listener (admin and self-service
// APIs, sign-in pages, dashboard, enrollment, metrics, health), in one place. The gateway's routes keep
// Anthropic's own headers and never reach this code.

/** The dashboard shell: its script, stylesheet and API calls come from this origin only. */
export const DASHBOARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

/** The server-rendered sign-in fallbacks: no script at all, one inline stylesheet, forms to this origin. */
export const FORM_PAGE_CSP = [
  "default-src 'none'",
  "style-src 'unsafe-inline'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

/** Everything else (JSON, text, files): nothing may run or load, and nothing may frame it. */
export const NO_CONTENT_CSP =
  "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/**
 * Set on every answer. `no-referrer` rather than `strict-origin…`: invite and sign-in links carry their
 * token in the path, and no page here links out in a way that needs a Referer. The cross-origin
 * policies keep other sites from opening these pages in a shared browsing context or embedding their
 * responses (scripts, JSON) — nothing here is meant to be loaded cross-origin.
 */
export const ALWAYS: ReadonlyArray<readonly [string, string]> = [
  ['x-content-type-options', 'nosniff'],
  ['x-frame-options', 'DENY'],
  ['referrer-policy', 'no-referrer'],
  ['cross-origin-opener-policy', 'same-origin'],
  ['cross-origin-resource-policy', 'same-origin'],
];

/** One year; no includeSubDomains or preload: Tollgate cannot speak for its parent domain's other hosts. */
export const HSTS = 'max-age=31536000';

export interface TransportFacts {
  /** The connection itself is TLS. */
  readonly tlsSocket: boolean;
  /** What Fastify reports: the last X-Forwarded-Proto when the proxy is trusted, else the socket's. */
  readonly protocol: string;
  readonly trustProxy: boolean;
  /** server.public_url starts with https: */
  readonly publicHttps: boolean;
}

/**
 * True when the browser reached us over HTTPS: a TLS socket, or a trusted proxy saying so for an
 * installation whose public URL is https. HSTS sent over plain http would be ignored by browsers at
 * best, and a forwarded header from an untrusted peer proves nothing.
 */
export function cameOverHttps(facts: TransportFacts): boolean {
  if (facts.tlsSocket) return true;
  return facts.trustProxy && facts.publicHttps && facts.protocol === 'https';
}
