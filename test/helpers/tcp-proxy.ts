// A TCP relay on a fixed local port in front of a real server (Redis), which a test can take down —
// every connection cut, new ones refused, as when the server becomes unreachable — and bring back up
// on the same port.
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export interface TcpProxy {
  /** e.g. redis://127.0.0.1:PORT for a Redis target. */
  readonly port: number;
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpProxy(targetHost: string, targetPort: number): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  let server: Server | null = null;
  let port = 0;

  const listen = async (): Promise<void> => {
    const s = createServer((client) => {
      const upstream = createConnection({ host: targetHost, port: targetPort });
      sockets.add(client);
      sockets.add(upstream);
      const cut = () => {
        client.destroy();
        upstream.destroy();
        sockets.delete(client);
        sockets.delete(upstream);
      };
      client.on('error', cut).on('close', cut);
      upstream.on('error', cut).on('close', cut);
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((done, fail) => {
      s.once('error', fail);
      s.listen(port, '127.0.0.1', () => done());
    });
    port = (s.address() as { port: number }).port;
    server = s;
  };

  const down = async (): Promise<void> => {
    const s = server;
    server = null;
    for (const socket of sockets) socket.destroy();
    sockets.clear();
    if (s) await new Promise<void>((done) => s.close(() => done()));
  };

  await listen();
  return {
    get port() {
      return port;
    },
    down,
    up: () => (server ? Promise.resolve() : listen()),
    close: down,
  };
}
