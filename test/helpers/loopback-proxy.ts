// A loopback HTTP proxy in front of Azurite that can let an append reach the service and then
// drop the reply (the connection is cut after the service answered): the "lost reply" of issue 4.
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface DroppingProxy {
  readonly port: number;
  // Rewrites an Azurite URL to go through the proxy.
  toProxyUrl(url: string): string;
  // Drops the replies of the next `count` successful appends.
  dropAppendReplies(count: number): void;
  // Status codes of every append request the service answered, in order.
  readonly appendStatuses: number[];
  // How many replies were dropped so far.
  readonly dropped: () => number;
  close(): Promise<void>;
}

// Starts a proxy on a free loopback port forwarding to 127.0.0.1:`targetPort`.
export async function startDroppingProxy(targetPort: number): Promise<DroppingProxy> {
  let toDrop = 0;
  let dropped = 0;
  const appendStatuses: number[] = [];
  const server: Server = createServer((req, res) => {
    const isAppend = /[?&]comp=appendblock/i.test(req.url ?? '');
    const upstream = request({ host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers: req.headers }, (reply: IncomingMessage) => {
      const status = reply.statusCode ?? 0;
      if (isAppend) appendStatuses.push(status);
      if (isAppend && toDrop > 0 && status < 300) {
        toDrop -= 1;
        dropped += 1;
        reply.resume();
        reply.on('end', () => req.socket.destroy());
        return;
      }
      res.writeHead(status, reply.headers);
      reply.pipe(res);
    });
    upstream.on('error', () => req.socket.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    toProxyUrl: (url) => url.replace(`127.0.0.1:${targetPort}`, `127.0.0.1:${port}`),
    dropAppendReplies: (count) => {
      toDrop += count;
    },
    appendStatuses,
    dropped: () => dropped,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
