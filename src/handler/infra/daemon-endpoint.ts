// The daemon's control endpoint, bound before the rest of the daemon loads (issue 11: cold start):
// a starting daemon answers `hello` as soon as its socket is up, acknowledges `enable` at once —
// as the daemon itself does: the run is considered later — and hands each on, in order, once the
// daemon attaches its handlers; every other request waits for them. So `enable`, which waits for
// the daemon it starts, waits for node's start and this module, not for winston, the watcher or zod.
// The native client's `fastEnable` is served here, attached or not, by the handler the daemon's
// command passes (commands/fast-enable.ts): when that client started this daemon, it waits for
// this answer (issue 16.3).
import type { Server } from 'node:net';
import { serveDaemon, type DaemonHandlers, type DaemonReply, type DaemonRequest, type FastEnableRequest } from './daemon-client.js';
import type { HandlerContext } from './context.js';
import type { Log } from './logger.js';

// Who serves this install, as `hello` answers.
export function toHello(context: HandlerContext): DaemonReply<'hello'> {
  return { pid: process.pid, version: context.version, configFolder: context.paths.configFolder };
}

// What the daemon attaches: every request but fastEnable, which the endpoint serves itself.
export type AttachedHandlers = Omit<DaemonHandlers, 'fastEnable'>;

export interface FastEnableDeps {
  readonly context: HandlerContext;
  // What the daemon's `enable` request does: keep the agent's variables, consider the run (once
  // the daemon is attached).
  enable(name: string, seq: number, agentEnv: Readonly<Record<string, string>>): void;
  // Logs, in the daemon's log, why an enable was left to node.
  logLeftToNode(reason: string): void;
}

export type FastEnableHandler = (request: FastEnableRequest, deps: FastEnableDeps) => Promise<DaemonReply<'fastEnable'>>;

export class DaemonEndpoint {
  #server: Server | undefined;
  #handlers: AttachedHandlers | undefined;
  readonly #pendingEnables: Array<DaemonRequest<'enable'>> = [];
  #fastEnableHandler: FastEnableHandler | undefined;
  #markAttached!: (attached: { handlers: AttachedHandlers; log: Log }) => void;
  readonly #attached = new Promise<{ handlers: AttachedHandlers; log: Log }>((resolve) => (this.#markAttached = resolve));

  // Binds the daemon's address of `context` (throws DaemonAlreadyRunning when another daemon serves
  // this install); `hello` is the answer until the daemon attaches. Without `fastEnable`, every
  // fastEnable is left to node.
  static async bind(context: HandlerContext, fastEnable?: FastEnableHandler): Promise<DaemonEndpoint> {
    const endpoint = new DaemonEndpoint();
    endpoint.#fastEnableHandler = fastEnable;
    const hello = toHello(context);
    const attached = async (): Promise<AttachedHandlers> => (await endpoint.#attached).handlers;
    endpoint.#server = await serveDaemon(context.daemonAddress, {
      hello: async () => (endpoint.#handlers ? endpoint.#handlers.hello({}) : hello),
      enable: async (request) => endpoint.#enable(request),
      disable: async (request) => (await attached()).disable(request),
      cancel: async (request) => (await attached()).cancel(request),
      shutdown: async (request) => (await attached()).shutdown(request),
      fastEnable: async (request) => endpoint.#fastEnable(context, request),
    });
    return endpoint;
  }

  #enable(request: DaemonRequest<'enable'>): Promise<DaemonReply<'enable'>> {
    if (this.#handlers) return this.#handlers.enable(request);
    this.#pendingEnables.push(request);
    return Promise.resolve({});
  }

  // Before the daemon loads the rest (a long block of evaluation that holds up every request): serves
  // the connections open by now — those of a native client that started this daemon and waits for
  // its token (rch-enable.c) — within `budgetMs`.
  async serveWaitingClients(budgetMs = 1000): Promise<void> {
    const deadline = Date.now() + budgetMs;
    const server = this.#server;
    while (server !== undefined && Date.now() < deadline) {
      const open = await new Promise<number>((resolve) => server.getConnections((error, count) => resolve(error ? 0 : count)));
      if (open === 0) return;
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  }

  async #fastEnable(context: HandlerContext, request: FastEnableRequest): Promise<DaemonReply<'fastEnable'>> {
    const handleFastEnable = this.#fastEnableHandler;
    if (handleFastEnable === undefined) return { handled: false, reason: 'this daemon does not serve fastEnable' };
    return handleFastEnable(request, {
      context,
      enable: (name, seq, agentEnv) => void this.#enable({ name, seq, agentEnv }),
      // The daemon's log exists once it attaches.
      logLeftToNode: (reason) => void this.#attached.then(({ log }) => log.info('native enable left to node', { reason, pid: request.pid })),
    });
  }

  // The daemon serves from now on: the enables acknowledged before go to it first, in order.
  attach(handlers: AttachedHandlers, log: Log): void {
    this.#handlers = handlers;
    for (const request of this.#pendingEnables.splice(0)) void handlers.enable(request);
    this.#markAttached({ handlers, log });
  }

  // Stops listening (and releases the single-instance lock) at once.
  close(): void {
    this.#server?.close();
  }
}
