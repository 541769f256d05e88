// The daemon's control endpoint, bound before the rest of the daemon loads (issue 11: cold start):
// a starting daemon answers `hello` as soon as its socket is up, acknowledges `enable` at once —
// as the daemon itself does: the run is considered later — and hands each on, in order, once the
// daemon attaches its handlers; every other request waits for them. So `enable`, which waits for
// the daemon it starts, waits for node's start and this module, not for winston, the watcher or zod.
import type { Server } from 'node:net';
import { serveDaemon, type DaemonHandlers, type DaemonReply, type DaemonRequest } from './daemon-client.js';
import type { HandlerContext } from './context.js';
import type { IpcAddress } from './ipc.js';

// Who serves this install, as `hello` answers.
export function toHello(context: HandlerContext): DaemonReply<'hello'> {
  return { pid: process.pid, version: context.version, configFolder: context.paths.configFolder };
}

export class DaemonEndpoint {
  #server: Server | undefined;
  #handlers: DaemonHandlers | undefined;
  readonly #pendingEnables: Array<DaemonRequest<'enable'>> = [];
  #markAttached!: (handlers: DaemonHandlers) => void;
  readonly #attached = new Promise<DaemonHandlers>((resolve) => (this.#markAttached = resolve));

  // Binds `address` (throws DaemonAlreadyRunning when another daemon serves this install);
  // `hello` is the answer until the daemon attaches.
  static async bind(address: IpcAddress, hello: DaemonReply<'hello'>): Promise<DaemonEndpoint> {
    const endpoint = new DaemonEndpoint();
    endpoint.#server = await serveDaemon(address, {
      hello: async () => (endpoint.#handlers ? endpoint.#handlers.hello({}) : hello),
      enable: async (request) => endpoint.#enable(request),
      disable: async (request) => (await endpoint.#attached).disable(request),
      cancel: async (request) => (await endpoint.#attached).cancel(request),
      shutdown: async (request) => (await endpoint.#attached).shutdown(request),
      fastEnable: async (request) => (await endpoint.#attached).fastEnable(request),
    });
    return endpoint;
  }

  #enable(request: DaemonRequest<'enable'>): Promise<DaemonReply<'enable'>> {
    if (this.#handlers) return this.#handlers.enable(request);
    this.#pendingEnables.push(request);
    return Promise.resolve({});
  }

  // The daemon serves from now on: the enables acknowledged before go to it first, in order.
  attach(handlers: DaemonHandlers): void {
    this.#handlers = handlers;
    for (const request of this.#pendingEnables.splice(0)) void handlers.enable(request);
    this.#markAttached(handlers);
  }

  // Stops listening (and releases the single-instance lock) at once.
  close(): void {
    this.#server?.close();
  }
}
