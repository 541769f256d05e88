// A real HTTP server on 127.0.0.1 for download tests: each test installs a handler per path and
// reads back what the server saw (method, path, query, headers).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Route = (request: IncomingMessage, response: ServerResponse, hit: number) => unknown;

export interface SeenRequest {
  readonly path: string;
  readonly query: string;
  readonly headers: IncomingMessage['headers'];
}

export interface LoopbackServer {
  readonly origin: string;
  readonly seen: SeenRequest[];
  // Serves `path` (without query) with `route`; `hit` counts from 1.
  route(path: string, route: Route): void;
  close(): Promise<void>;
}

// Starts a server; unknown paths get 404.
export async function startLoopbackServer(): Promise<LoopbackServer> {
  const routes = new Map<string, Route>();
  const hits = new Map<string, number>();
  const seen: SeenRequest[] = [];
  const server: Server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    seen.push({ path: url.pathname, query: url.search, headers: request.headers });
    const hit = (hits.get(url.pathname) ?? 0) + 1;
    hits.set(url.pathname, hit);
    const route = routes.get(url.pathname);
    if (!route) {
      response.writeHead(404).end('not found');
      return;
    }
    void Promise.resolve(route(request, response, hit)).catch(() => response.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    seen,
    route: (path, route) => void routes.set(path, route),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

// A route that answers 200 with `body`.
export function serve(body: string | Buffer, headers: Record<string, string> = {}): Route {
  return (_request, response) => {
    response.writeHead(200, headers).end(body);
  };
}

// A server that accepts every request and never answers: a download that stalls.
export interface SilentServer {
  // The URL of `path` on it.
  url(path: string): string;
  // How many requests it has received.
  readonly requests: number;
  close(): void;
}

// Starts a silent server on 127.0.0.1.
export async function startSilentServer(): Promise<SilentServer> {
  const server = createServer(() => undefined);
  let requests = 0;
  server.on('request', () => (requests += 1));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: (path) => `http://127.0.0.1:${port}${path}`,
    get requests() {
      return requests;
    },
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}
