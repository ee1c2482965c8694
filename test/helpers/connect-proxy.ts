// A local HTTP CONNECT proxy, as found in front of locked-down networks: it opens a TCP tunnel to the
// host:port a client names and records every tunnel it opened. Names in `hosts` are resolved by the
// proxy only (e.g. upstream.test → 127.0.0.1), so a client that reaches them must have used the proxy.
import { createServer, type IncomingMessage } from 'node:http';
import { type AddressInfo, createConnection, type Socket } from 'node:net';

export interface ConnectProxy {
  /** http://127.0.0.1:PORT */
  readonly url: string;
  readonly port: number;
  /** `host:port` of every tunnel opened, in order. */
  readonly tunnels: string[];
  /** `host:port` of every CONNECT refused (407 for a missing or wrong Proxy-Authorization). */
  readonly refused: string[];
  close(): Promise<void>;
}

export interface ConnectProxyOptions {
  /** Names only the proxy can resolve. */
  hosts?: Readonly<Record<string, string>>;
  /** `user:password` the proxy requires (Basic); absent = open proxy. */
  credentials?: string;
}

export async function startConnectProxy(options: ConnectProxyOptions = {}): Promise<ConnectProxy> {
  const tunnels: string[] = [];
  const refused: string[] = [];
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  };
  const expected =
    options.credentials === undefined ? null : `Basic ${Buffer.from(options.credentials).toString('base64')}`;

  const server = createServer((_req, res) => {
    res.writeHead(405).end('CONNECT only');
  });
  server.on('connect', (req: IncomingMessage, client: Socket, head: Buffer) => {
    track(client);
    const target = req.url ?? '';
    if (expected !== null && req.headers['proxy-authorization'] !== expected) {
      refused.push(target);
      client.end('HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\n');
      return;
    }
    const match = /^\[?([^\]]+?)\]?:(\d+)$/.exec(target);
    if (!match) {
      refused.push(target);
      client.end('HTTP/1.1 400 Bad Request\r\n\r\n');
      return;
    }
    const [, host = '', port = '0'] = match;
    const upstream = createConnection({ host: options.hosts?.[host] ?? host, port: Number(port) });
    track(upstream);
    upstream.once('connect', () => {
      tunnels.push(target);
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      client.pipe(upstream);
      upstream.pipe(client);
    });
    upstream.on('error', () => client.end('HTTP/1.1 502 Bad Gateway\r\n\r\n'));
    client.on('error', () => upstream.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    tunnels,
    refused,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
