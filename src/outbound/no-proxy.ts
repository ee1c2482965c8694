// Which destinations bypass the outbound proxy: the usual NO_PROXY list (comma- or space-separated).
// An entry is a host name (it and its subdomains match; a leading "." or "*." is the same), an IP address
// (exact match), either with an optional ":port", or "*" for every host. Loopback names get no special
// case: list localhost and 127.0.0.1 to reach them directly. Pure: no DNS, no environment.

export interface NoProxyRule {
  /** Lower case, without a leading "." or "*." and without brackets around an IPv6 address. */
  readonly host: string;
  /** 0 = any port. */
  readonly port: number;
}

export interface NoProxy {
  readonly all: boolean;
  readonly rules: readonly NoProxyRule[];
}

const WITH_PORT = /^(.+):(\d{1,5})$/;

/** Parses a NO_PROXY value; entries that cannot name a host are ignored. */
export function parseNoProxy(text: string): NoProxy {
  const rules: NoProxyRule[] = [];
  let all = false;
  for (const raw of text.split(/[,\s]+/)) {
    const entry = raw.trim().toLowerCase();
    if (entry === '') continue;
    if (entry === '*') {
      all = true;
      continue;
    }
    const { host, port } = splitPort(entry);
    const bare = host
      .replace(/^\*?\./, '')
      .replace(/^\[|\]$/g, '')
      .replace(/\.$/, '');
    if (bare !== '') rules.push({ host: bare, port });
  }
  return { all, rules };
}

function splitPort(entry: string): { host: string; port: number } {
  // A bare IPv6 address ("::1") has colons but no port; a bracketed one may have one ("[::1]:8080").
  if (entry.startsWith('[')) {
    const close = entry.indexOf(']');
    const port = close > 0 && entry[close + 1] === ':' ? Number(entry.slice(close + 2)) : 0;
    return { host: entry.slice(0, close + 1), port: Number.isInteger(port) ? port : 0 };
  }
  const match = entry.indexOf(':') === entry.lastIndexOf(':') ? WITH_PORT.exec(entry) : null;
  return match ? { host: match[1] ?? entry, port: Number(match[2]) } : { host: entry, port: 0 };
}

/** True when a connection to `hostname:port` must not go through the proxy. */
export function bypassesProxy(noProxy: NoProxy, hostname: string, port: number): boolean {
  if (noProxy.all) return true;
  const host = hostname
    .toLowerCase()
    .replace(/^\[|\]$/g, '')
    .replace(/\.$/, '');
  for (const rule of noProxy.rules) {
    if (rule.port !== 0 && rule.port !== port) continue;
    if (host === rule.host || host.endsWith(`.${rule.host}`)) return true;
  }
  return false;
}
