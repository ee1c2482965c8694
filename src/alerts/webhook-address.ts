// Where an alert webhook may point: http(s) only, and never a link-local or cloud metadata address unless
// `alerts.webhook_allow_link_local` says so. Loopback and private addresses stay allowed (self-hosted
// relays). Checked on the URL at config load and on every resolved address at send time (DNS rebinding).
// Pure: no DNS here.
import { isIP } from 'node:net';

/**
 * Metadata services reachable by name (each resolves to an address below, but a resolver may be told
 * otherwise; the name alone is refused).
 */
const METADATA_NAMES: ReadonlySet<string> = new Set([
  'metadata.google.internal', // Google Cloud
  'metadata.goog', // Google Cloud
  'metadata', // Google Cloud short name, OpenStack images
  'instance-data', // AWS EC2 (search-domain form)
  'instance-data.ec2.internal', // AWS EC2
  'metadata.azure.internal', // Azure
  'metadata.tencentyun.com', // Tencent Cloud
]);

/** Metadata addresses outside the link-local ranges (those are refused as a whole). */
const METADATA_V4: ReadonlySet<string> = new Set([
  '100.100.100.200', // Alibaba Cloud
  '168.63.129.16', // Azure platform endpoint (wireserver)
  '192.0.0.192', // Oracle Cloud (legacy)
]);
const METADATA_V6: ReadonlySet<string> = new Set([
  'fd00:ec2:0:0:0:0:0:254', // AWS EC2 over IPv6
]);

export const ADDRESS_REFUSED = 'a link-local or cloud metadata address';

/** Why an IP address may not receive alerts (a short reason), or null when it may. */
export function refusedAddress(address: string): string | null {
  const ip = address.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  const family = isIP(ip);
  if (family === 4) return refusedV4(ip);
  if (family === 6) {
    const groups = expandV6(ip);
    if (!groups) return 'an unparsable address';
    return refusedV6(groups);
  }
  return null;
}

/** Why a URL's host may not receive alerts, or null: metadata names, and literal addresses. */
export function refusedHost(hostname: string): string | null {
  const host = hostname.toLowerCase().replace(/\.$/, '');
  if (METADATA_NAMES.has(host)) return 'a cloud metadata name';
  return refusedAddress(host);
}

/** The problem of a webhook URL for config validation (never repeating the URL), or null. */
export function webhookUrlProblem(value: string, allowLinkLocal: boolean): string | null {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'expected an http(s) URL';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'expected an http(s) URL';
  if (allowLinkLocal) return null;
  const why = refusedHost(url.hostname);
  return why === null
    ? null
    : `points to ${why}; set alerts.webhook_allow_link_local: true if this is intended`;
}

function refusedV4(ip: string): string | null {
  const [a, b] = ip.split('.').map(Number);
  if (a === 169 && b === 254) return ADDRESS_REFUSED; // link-local, includes 169.254.169.254
  if (a === 0) return 'an unspecified address';
  if (METADATA_V4.has(ip)) return ADDRESS_REFUSED;
  return null;
}

function refusedV6(groups: readonly number[]): string | null {
  const [g0 = 0, g1 = 0, g2 = 0, g3 = 0, g4 = 0, g5 = 0, g6 = 0, g7 = 0] = groups;
  if ((g0 & 0xffc0) === 0xfe80) return ADDRESS_REFUSED; // fe80::/10
  if (groups.every((g) => g === 0)) return 'an unspecified address';
  if (METADATA_V6.has(groups.map((g) => g.toString(16)).join(':'))) return ADDRESS_REFUSED;
  // IPv4 inside IPv6 (mapped ::ffff:a.b.c.d, NAT64 64:ff9b::a.b.c.d) is the IPv4 address.
  const mapped = g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0xffff;
  const nat64 = g0 === 0x64 && g1 === 0xff9b && g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0;
  if (mapped || nat64) return refusedV4(`${g6 >> 8}.${g6 & 0xff}.${g7 >> 8}.${g7 & 0xff}`);
  return null;
}

/** The eight 16-bit groups of an IPv6 address (with `::` and a trailing dotted quad), or null. */
export function expandV6(ip: string): number[] | null {
  let text = ip.toLowerCase();
  const quad = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (quad) {
    const [a, b, c, d] = quad.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, quad.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const parse = (part: string | undefined) =>
    part ? part.split(':').map((h) => Number.parseInt(h, 16)) : [];
  const head = parse(halves[0]);
  const tail = parse(halves[1]);
  const fill = halves.length === 2 ? 8 - head.length - tail.length : 0;
  const groups = [...head, ...new Array<number>(Math.max(0, fill)).fill(0), ...tail];
  if (groups.length !== 8 || groups.some((g) => !Number.isInteger(g) || g < 0 || g > 0xffff)) return null;
  return groups;
}
