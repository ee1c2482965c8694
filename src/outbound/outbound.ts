// Every outbound call to a fixed destination (Anthropic, the Admin API, alert webhooks, the identity
// provider, doctor) takes its connection from here, so upstream.proxy_url, upstream.no_proxy and
// upstream.ca_file apply to all of them alike. With neither proxy_url nor ca_file set, there are no
// settings (null) and each caller keeps exactly the dispatcher it had before.
import { Agent, type Dispatcher, fetch as undiciFetch } from 'undici';
import type { Config } from '../config/load.js';
import { trustedRoots } from './ca-file.js';
import { bypassesProxy, parseNoProxy } from './no-proxy.js';
import { type ConnectSettings, createConnector, proxyTarget } from './tunnel.js';

export type OutboundSettings = ConnectSettings;
type UpstreamConfig = Config['upstream'];

/** A connection attempt (tunnel or handshake) waits this long at most unless the caller says less. */
const CONNECT_TIMEOUT_MS = 10_000;

/** The settings of the upstream section; null when neither a proxy nor extra CA certificates are set. */
export function outboundSettings(upstream: UpstreamConfig): OutboundSettings | null {
  if (upstream.proxy_url === null && upstream.ca_file === null) return null;
  return {
    proxy: upstream.proxy_url === null ? null : proxyTarget(upstream.proxy_url),
    noProxy: parseNoProxy(upstream.no_proxy),
    ca: upstream.ca_file === null ? null : trustedRoots(upstream.ca_file),
  };
}

/** A dispatcher of its own (e.g. the gateway's, with its pool sizes and timeouts) over the settings. */
export function createOutboundAgent(
  settings: OutboundSettings,
  options: Omit<Agent.Options, 'connect'> = {},
  connectTimeoutMs = CONNECT_TIMEOUT_MS,
): Agent {
  return new Agent({ ...options, connect: createConnector(settings, connectTimeoutMs) });
}

export interface Outbound {
  readonly settings: OutboundSettings;
  readonly dispatcher: Dispatcher;
  /** WHATWG fetch over the dispatcher (for libraries that take a fetch, such as openid-client). */
  readonly fetch: typeof undiciFetch;
}

const shared = new WeakMap<UpstreamConfig, Outbound | null>();

/** The process's one outbound dispatcher for this (frozen) config; null = use the defaults. */
export function sharedOutbound(upstream: UpstreamConfig): Outbound | null {
  if (shared.has(upstream)) return shared.get(upstream) ?? null;
  const settings = outboundSettings(upstream);
  let outbound: Outbound | null = null;
  if (settings !== null) {
    const dispatcher = createOutboundAgent(settings);
    outbound = {
      settings,
      dispatcher,
      fetch: (input, init) => undiciFetch(input, { ...init, dispatcher }),
    };
  }
  shared.set(upstream, outbound);
  return outbound;
}

/** `{ dispatcher }` to spread into undici request options, or nothing (the global dispatcher). */
export function dispatcherOption(upstream: UpstreamConfig): { dispatcher?: Dispatcher } {
  const outbound = sharedOutbound(upstream);
  return outbound === null ? {} : { dispatcher: outbound.dispatcher };
}

/** How a connection to `url` is made, for doctor (the proxy's host and port only, never its password). */
export function describeRoute(settings: OutboundSettings | null, url: URL): string {
  if (settings === null) return 'direct';
  const port = Number(url.port) || (url.protocol === 'https:' ? 443 : 80);
  const extraCa = settings.ca === null ? '' : ', extra CA certificates from upstream.ca_file';
  const { proxy } = settings;
  if (proxy === null) return `direct${extraCa}`;
  if (bypassesProxy(settings.noProxy, url.hostname, port)) return `direct (upstream.no_proxy)${extraCa}`;
  const host = proxy.hostname.includes(':') ? `[${proxy.hostname}]` : proxy.hostname;
  return `through the proxy ${host}:${proxy.port}${extraCa}`;
}
