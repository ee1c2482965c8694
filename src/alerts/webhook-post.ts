// One webhook POST: the host's every resolved address is checked (link-local and metadata addresses are
// refused unless allowed) and the connection goes to the address that was checked, so a DNS answer that
// changes between check and connect (rebinding) cannot redirect it. Redirects are never followed; the
// whole attempt has a deadline; the answer's body is read to at most 64 KiB and dropped. Errors name a
// status or a network code, never the URL (a Slack webhook URL carries its token).
// Through upstream.proxy_url the same checks run first (the name, then every address this host resolves
// it to: a name that does not resolve here is not sent), then a CONNECT tunnel asks the proxy for the
// host by name; upstream.ca_file's roots are trusted either way.
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction, Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { bypassesProxy } from '../outbound/no-proxy.js';
import type { OutboundSettings } from '../outbound/outbound.js';
import { openTunnel, type ProxyTarget } from '../outbound/tunnel.js';
import { refusedAddress, refusedHost } from './webhook-address.js';

export type PostResult = { ok: true } | { ok: false; retry: boolean; error: string };

export interface PostOptions {
  readonly timeoutMs: number;
  readonly allowLinkLocal: boolean;
  readonly headers: Readonly<Record<string, string>>;
  /** Resolves a host name to all its addresses (default: the system resolver, `dns.lookup`). */
  readonly resolve?: Resolve;
  /** upstream.proxy_url / no_proxy / ca_file (outbound/outbound.ts); null or absent = direct. */
  readonly outbound?: OutboundSettings | null;
}

export type Resolve = (
  hostname: string,
  family: number,
  callback: (error: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void,
) => void;

const systemResolve: Resolve = (hostname, family, callback) =>
  dnsLookup(hostname, { all: true, family }, callback);

export type PostWebhook = (url: string, body: string, options: PostOptions) => Promise<PostResult>;

const MAX_ANSWER_BYTES = 64 * 1024;

class RefusedAddress extends Error {
  readonly code = 'EREFUSEDADDRESS';
}

/** A lookup that answers only addresses alerts may reach (all of them are checked). */
export function guardedLookup(allowLinkLocal: boolean, resolve: Resolve = systemResolve): LookupFunction {
  return (hostname, options, callback) => {
    const family = options.family === 'IPv4' ? 4 : options.family === 'IPv6' ? 6 : (options.family ?? 0);
    resolve(hostname, family, (error, addresses) => {
      if (error) return callback(error, '', 0);
      const refused = allowLinkLocal ? undefined : addresses.find((a) => refusedAddress(a.address) !== null);
      if (refused || addresses.length === 0) {
        return callback(new RefusedAddress('refused address'), '', 0);
      }
      if (options.all) return (callback as (e: null, a: LookupAddress[]) => void)(null, addresses);
      const first = addresses[0] as LookupAddress;
      callback(null, first.address, first.family);
    });
  };
}

export const postWebhook: PostWebhook = (target, body, options) => {
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    return Promise.resolve({ ok: false, retry: false, error: 'invalid URL' });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return Promise.resolve({ ok: false, retry: false, error: 'not an http(s) URL' });
  }
  // A literal address never reaches the lookup: it is checked here.
  const why = options.allowLinkLocal ? null : refusedHost(url.hostname);
  if (why !== null) return Promise.resolve({ ok: false, retry: false, error: `refused: ${why}` });
  const client = url.protocol === 'https:' ? https : http;
  const outbound = options.outbound ?? null;
  const proxy = proxyFor(outbound, url);
  return new Promise<PostResult>((resolve) => {
    let done = false;
    let request: http.ClientRequest | null = null;
    let tunnel: Socket | null = null;
    const finish = (result: PostResult) => {
      if (done) return;
      done = true;
      clearTimeout(deadline);
      if (request === null) tunnel?.destroy();
      resolve(result);
    };
    const deadline = setTimeout(() => {
      request?.destroy();
      finish({ ok: false, retry: true, error: 'timeout' });
    }, options.timeoutMs);
    const onError = (error: NodeJS.ErrnoException) => {
      if (error instanceof RefusedAddress || error.code === 'EREFUSEDADDRESS') {
        finish({
          ok: false,
          retry: false,
          error: 'refused: the host resolves to a link-local or metadata address',
        });
      } else finish({ ok: false, retry: true, error: error.code ?? 'network error' });
    };
    // Directly: to the checked address (guarded lookup). Through the proxy: over the tunnel's socket.
    const send = (socket: Socket | null) => {
      if (done) {
        socket?.destroy();
        return;
      }
      request = client.request(
        url,
        {
          method: 'POST',
          ...(socket === null
            ? { agent: false, lookup: guardedLookup(options.allowLinkLocal, options.resolve) }
            : { createConnection: () => socket }),
          ...(outbound?.ca ? { ca: outbound.ca as string[] } : {}),
          headers: {
            ...options.headers,
            'content-type': 'application/json',
            'content-length': String(Buffer.byteLength(body)),
          },
        },
        (response) => {
          const status = response.statusCode ?? 0;
          let read = 0;
          response.on('data', (chunk: Buffer) => {
            read += chunk.length;
            if (read > MAX_ANSWER_BYTES) response.destroy();
          });
          const settle = () => finish(classify(status));
          response.on('end', settle);
          response.on('close', settle);
          response.on('error', settle);
        },
      );
      request.on('error', onError);
      request.end(body);
    };
    if (proxy === null) send(null);
    else {
      const port = Number(url.port) || (url.protocol === 'https:' ? 443 : 80);
      checkAddresses(url.hostname, options.allowLinkLocal, options.resolve ?? systemResolve, (error) => {
        if (error !== null) onError(error);
        else openTunnel(proxy, url.hostname, port, options.timeoutMs, onTunnel);
      });
    }
    function onTunnel(failed: Error | null, socket: Socket | null): void {
      if (failed !== null || socket === null) {
        onError(failed ?? new Error('no tunnel'));
        return;
      }
      tunnel = socket;
      if (url.protocol === 'http:') {
        send(socket);
        return;
      }
      // TLS end to end inside the tunnel: the proxy sees neither the path (it carries a token) nor the body.
      tunnel = tlsConnect({
        socket,
        servername: url.hostname.replace(/^\[|\]$/g, ''),
        ...(outbound?.ca ? { ca: outbound.ca as string[] } : {}),
      });
      send(tunnel);
    }
  });
};

/** The proxy for this URL, or null when there is none or upstream.no_proxy lists the host. */
function proxyFor(outbound: OutboundSettings | null, url: URL): ProxyTarget | null {
  if (outbound === null || outbound.proxy === null) return null;
  const port = Number(url.port) || (url.protocol === 'https:' ? 443 : 80);
  return bypassesProxy(outbound.noProxy, url.hostname, port) ? null : outbound.proxy;
}

/** The proxy connects by name: every address this host resolves it to must pass, as without a proxy. */
function checkAddresses(
  hostname: string,
  allowLinkLocal: boolean,
  resolve: Resolve,
  done: (error: NodeJS.ErrnoException | null) => void,
): void {
  if (allowLinkLocal) done(null);
  else guardedLookup(false, resolve)(hostname.replace(/^\[|\]$/g, ''), { all: true }, (error) => done(error));
}

/** 2xx delivered; 408, 429 and 5xx are retried; a redirect or another 4xx will not get better. */
function classify(status: number): PostResult {
  if (status >= 200 && status < 300) return { ok: true };
  if (status >= 300 && status < 400) {
    return { ok: false, retry: false, error: `HTTP ${status} (redirects are not followed)` };
  }
  const retry = status === 408 || status === 429 || status >= 500 || status === 0;
  return { ok: false, retry, error: `HTTP ${status}` };
}
