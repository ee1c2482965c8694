// How an outbound connection is opened: directly (with the extra CA roots, if any), or through the HTTP
// proxy with CONNECT and then TLS end to end inside the tunnel, so the proxy never sees the request (nor
// its API key). Used as undici's `connect` option: it runs once per new connection, never per request.
import http from 'node:http';
import type { Socket } from 'node:net';
import { buildConnector } from 'undici';
import { bypassesProxy, type NoProxy } from './no-proxy.js';

export interface ProxyTarget {
  readonly hostname: string;
  readonly port: number;
  /** `Basic …` from the URL's user:password; sent to the proxy only, never logged. */
  readonly authorization: string | null;
}

export interface ConnectSettings {
  readonly proxy: ProxyTarget | null;
  readonly noProxy: NoProxy;
  /** Node's default roots plus upstream.ca_file's certificates; null = Node's defaults. */
  readonly ca: readonly string[] | null;
}

/** Thrown when the proxy refuses or breaks a tunnel: the request was never sent. */
export class ProxyTunnelError extends Error {
  readonly code = 'EPROXYTUNNEL';
}

/** The proxy of a `http://[user:pass@]host:port` URL (validated by the config schema). */
export function proxyTarget(url: string): ProxyTarget {
  const parsed = new URL(url);
  const user = decodeURIComponent(parsed.username);
  const password = decodeURIComponent(parsed.password);
  return {
    hostname: parsed.hostname.replace(/^\[|\]$/g, ''),
    port: Number(parsed.port) || 80,
    authorization:
      user === '' && password === ''
        ? null
        : `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`,
  };
}

/** An undici connector for the settings; `timeoutMs` bounds the tunnel and the TLS handshake each. */
export function createConnector(settings: ConnectSettings, timeoutMs: number): buildConnector.connector {
  const direct = buildConnector({
    timeout: timeoutMs,
    ...(settings.ca === null ? {} : { ca: settings.ca as string[] }),
  });
  const proxy = settings.proxy;
  if (proxy === null) return direct;
  return (options, callback) => {
    const port = Number(options.port) || (options.protocol === 'https:' ? 443 : 80);
    if (bypassesProxy(settings.noProxy, options.hostname, port)) {
      direct(options, callback);
      return;
    }
    openTunnel(proxy, options.hostname, port, timeoutMs, (error, socket) => {
      if (error !== null || socket === null) callback(error ?? new ProxyTunnelError('no tunnel'), null);
      else if (options.protocol === 'https:') direct({ ...options, httpSocket: socket }, callback);
      else callback(null, socket);
    });
  };
}

/** Asks the proxy for a tunnel to host:port (`CONNECT host:port`), answering the raw socket on 200. */
export function openTunnel(
  proxy: ProxyTarget,
  hostname: string,
  port: number,
  timeoutMs: number,
  done: (error: Error | null, socket: Socket | null) => void,
): void {
  const host = hostname.replace(/^\[|\]$/g, '');
  const authority = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  const headers: Record<string, string> = { host: authority };
  if (proxy.authorization !== null) headers['proxy-authorization'] = proxy.authorization;
  let settled = false;
  const finish = (error: Error | null, socket: Socket | null) => {
    if (settled) {
      socket?.destroy();
      return;
    }
    settled = true;
    clearTimeout(timer);
    done(error, socket);
  };
  const request = http.request({
    host: proxy.hostname,
    port: proxy.port,
    method: 'CONNECT',
    path: authority,
    headers,
    agent: false,
  });
  const timer = setTimeout(() => {
    request.destroy();
    finish(new ProxyTunnelError('the proxy did not open a tunnel in time'), null);
  }, timeoutMs);
  request.on('connect', (response, socket, head) => {
    if (response.statusCode !== 200) {
      socket.destroy();
      finish(new ProxyTunnelError(`the proxy answered ${response.statusCode} to CONNECT`), null);
      return;
    }
    if (head.length > 0) socket.unshift(head);
    finish(null, socket);
  });
  // A proxy that cannot be reached: its own code (ECONNREFUSED…), so callers see a connect failure.
  request.on('error', (error) => finish(error, null));
  request.end();
}
