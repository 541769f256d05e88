// The daemon's control protocol, typed once for both sides: the requests the lifecycle and operator
// commands send, the replies they get, how long each may take, and the dispatcher the daemon serves
// them with (which checks every field: names become paths, and the client is not trusted).
import type { Server } from 'node:net';
import { isRunKey } from '../../config/run-command.js';
import { agentVariable } from '../../runner/parameters.js';
import { sendIpcRequest, startIpcServer, type IpcAddress, type IpcRequest, type IpcResponse } from './ipc.js';

// Each operation: what the request carries and what a successful reply holds.
export interface DaemonProtocol {
  // Who serves this install (an update asks another version's daemon to stop).
  hello: { request: Record<string, never>; reply: { pid: number; version: string; configFolder: string } };
  // Consider (name, seq) now; answered at once, before any superseded run has died. `agentEnv`:
  // the agent's AZURE_GUEST_AGENT_* variables of this enable, which scripts get from now on.
  enable: { request: { name: string; seq: number; agentEnv?: Readonly<Record<string, string>> }; reply: Record<string, never> };
  // The run command was deleted: kill its run, silence its status, forget its record.
  disable: { request: { name: string }; reply: Record<string, never> };
  // The operator's cancel: tree-kill the current run.
  cancel: { request: { name: string }; reply: { canceled: boolean } };
  // Stop serving (uninstall cancels the runs; an update leaves them to the next daemon).
  shutdown: { request: { cancelRuns: boolean }; reply: Record<string, never> };
  // The whole of an `enable` sent by the native client (src/native/rch-enable.c) instead of node:
  // its argv, working directory, pid and the variables enable reads. `handled: false` (with the
  // reason) when they do not name the install this daemon serves: the client then runs node's enable.
  fastEnable: { request: FastEnableRequest; reply: { handled: boolean; reason?: string } };
}

export interface FastEnableRequest {
  readonly argv: readonly string[];
  readonly cwd: string;
  readonly pid: number;
  // The client started this daemon (no daemon answered it): the command log says `started`.
  readonly started?: boolean;
  // RUNCOMMAND_HANDLER_*, AZURE_GUEST_AGENT_*, ConfigExtensionName and ConfigSequenceNumber.
  readonly env: Readonly<Record<string, string>>;
}

// The variables a fast enable may carry: those `enable` reads, nothing else.
const fastEnableVariable = /^(?:RUNCOMMAND_HANDLER_[A-Z0-9_]{1,64}|AZURE_GUEST_AGENT_[A-Z0-9_]{1,64}|ConfigExtensionName|ConfigSequenceNumber)$/;

export type DaemonOp = keyof DaemonProtocol;
export type DaemonRequest<K extends DaemonOp> = DaemonProtocol[K]['request'];
export type DaemonReply<K extends DaemonOp> = DaemonProtocol[K]['reply'];
export type DaemonHandlers = { readonly [K in DaemonOp]: (request: DaemonRequest<K>) => Promise<DaemonReply<K>> };

// How long a client waits for each answer: a kill may take the grace period and its fallback.
export function toTimeoutMs(op: DaemonOp, killGraceMs: number): number {
  switch (op) {
    case 'hello':
      return 300;
    case 'enable':
      return 1000;
    case 'shutdown':
    case 'fastEnable':
      return 1000;
    case 'disable':
    case 'cancel':
      return killGraceMs + 15_000;
  }
}

// The typed client of one install's daemon; every method resolves undefined when no daemon answered.
export class DaemonClient {
  readonly #address: IpcAddress;
  readonly #killGraceMs: number;

  constructor(address: IpcAddress, killGraceMs: number) {
    this.#address = address;
    this.#killGraceMs = killGraceMs;
  }

  hello(timeoutMs = toTimeoutMs('hello', this.#killGraceMs)): Promise<DaemonReply<'hello'> | undefined> {
    return this.#send('hello', {}, timeoutMs);
  }

  enable(name: string, seq: number, agentEnv?: Readonly<Record<string, string>>): Promise<DaemonReply<'enable'> | undefined> {
    return this.#send('enable', { name, seq, ...(agentEnv === undefined ? {} : { agentEnv }) });
  }

  disable(name: string): Promise<DaemonReply<'disable'> | undefined> {
    return this.#send('disable', { name });
  }

  cancel(name: string): Promise<DaemonReply<'cancel'> | undefined> {
    return this.#send('cancel', { name });
  }

  shutdown(cancelRuns: boolean): Promise<DaemonReply<'shutdown'> | undefined> {
    return this.#send('shutdown', { cancelRuns });
  }

  async #send<K extends DaemonOp>(op: K, request: DaemonRequest<K>, timeoutMs = toTimeoutMs(op, this.#killGraceMs)): Promise<DaemonReply<K> | undefined> {
    const reply = await sendIpcRequest(this.#address, { op, ...request }, timeoutMs);
    if (reply?.ok !== true) return undefined;
    const { ok: _ok, ...fields } = reply;
    return fields as DaemonReply<K>;
  }
}

// Serves the protocol on `address` with `handlers`; a request whose fields are not valid is
// answered with an error and never reaches them.
export function serveDaemon(address: IpcAddress, handlers: DaemonHandlers): Promise<Server> {
  return startIpcServer(address, (request) => dispatch(request, handlers));
}

async function dispatch(request: IpcRequest, handlers: DaemonHandlers): Promise<IpcResponse> {
  const refusal = toRefusal(request);
  if (refusal !== undefined) return { ok: false, error: refusal };
  const name = request['name'] as string;
  switch (request.op as DaemonOp) {
    case 'hello':
      return { ok: true, ...(await handlers.hello({})) };
    case 'enable':
      return { ok: true, ...(await handlers.enable({ name, seq: request['seq'] as number, ...toAgentEnv(request['agentEnv']) })) };
    case 'disable':
      return { ok: true, ...(await handlers.disable({ name })) };
    case 'cancel':
      return { ok: true, ...(await handlers.cancel({ name })) };
    case 'shutdown':
      return { ok: true, ...(await handlers.shutdown({ cancelRuns: request['cancelRuns'] === true })) };
    case 'fastEnable':
      return { ok: true, ...(await handlers.fastEnable(toFastEnableRequest(request))) };
  }
}

// Why a request is refused, if it is: an unknown operation, a name that cannot be a path, a
// sequence number that is not a non-negative integer.
function toRefusal(request: IpcRequest): string | undefined {
  if (!['hello', 'enable', 'disable', 'cancel', 'shutdown', 'fastEnable'].includes(request.op)) return 'unknown operation';
  if (request.op === 'fastEnable') return toFastEnableRefusal(request);
  if (['enable', 'disable', 'cancel'].includes(request.op) && (typeof request['name'] !== 'string' || !isRunKey(request['name']))) return 'invalid run command name';
  const seq = request['seq'];
  if (request.op === 'enable' && !(typeof seq === 'number' && Number.isSafeInteger(seq) && seq >= 0)) return 'invalid sequence number';
  if (request.op === 'enable' && request['agentEnv'] !== undefined && toAgentEnv(request['agentEnv']).agentEnv === undefined) return 'invalid agent environment';
  return undefined;
}

// Why a fast enable is refused: argv a list of at most 64 strings, cwd an absolute path, pid a
// positive integer, started absent or a boolean, env at most 128 of the variables enable reads,
// each a string without NUL.
function toFastEnableRefusal(request: IpcRequest): string | undefined {
  const { argv, cwd, pid, env } = request;
  const isText = (value: unknown): value is string => typeof value === 'string' && !value.includes('\0');
  if (!Array.isArray(argv) || argv.length > 64 || !argv.every(isText)) return 'argv: must be a list of at most 64 strings';
  if (!isText(cwd) || !cwd.startsWith('/')) return 'cwd: must be an absolute path';
  if (!(typeof pid === 'number' && Number.isSafeInteger(pid) && pid > 0)) return 'pid: must be a positive integer';
  if (request['started'] !== undefined && typeof request['started'] !== 'boolean') return 'started: must be a boolean';
  if (env === null || typeof env !== 'object' || Array.isArray(env)) return 'env: must be an object';
  const entries = Object.entries(env as Record<string, unknown>);
  if (entries.length > 128 || !entries.every(([key, value]) => fastEnableVariable.test(key) && isText(value))) return 'env: only the variables enable reads, as strings';
  return undefined;
}

// A fastEnable request's fields (toFastEnableRefusal has checked them).
function toFastEnableRequest(request: IpcRequest): FastEnableRequest {
  const { argv, cwd, pid, started, env } = request as unknown as FastEnableRequest;
  return { argv, cwd, pid, ...(started === undefined ? {} : { started }), env };
}

// The agent's variables of an enable request: at most 64 AZURE_GUEST_AGENT_* names with string
// values of at most 8 KiB, without NUL; anything else is refused whole.
function toAgentEnv(value: unknown): { agentEnv?: Record<string, string> } {
  if (value === undefined || value === null || typeof value !== 'object' || Array.isArray(value)) return {};
  const entries = Object.entries(value as Record<string, unknown>);
  const valid = entries.length <= 64 && entries.every(([key, text]) => agentVariable.test(key) && typeof text === 'string' && text.length <= 8192 && !text.includes('\0'));
  return valid ? { agentEnv: Object.fromEntries(entries) as Record<string, string> } : {};
}
