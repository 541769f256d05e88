// Telemetry events for the agent's pipeline (protocol.md §9): one `<digits>.json` file per event in
// eventsFolder, which the agent collects every 5 min and deletes. Never a secret, never output.
import { mkdir, readdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Clock } from '../../util/time.js';
import type { Redactor } from '../infra/redact.js';

export type EventLevel = 'Informational' | 'Warning' | 'Error';

export interface HandlerEvent {
  readonly taskName: string;
  readonly level: EventLevel;
  readonly message: string;
  // Ties the events of one run together (its run id).
  readonly operationId: string;
}

const maxMessageChars = 3072;
const maxEventChars = 6144;
// If the agent does not collect (local use, no pipeline), stop adding files past this many.
const maxPendingFiles = 1000;

// The event object as the agent reads it; Message cut to 3072 characters, the event to 6144.
export function toEventObject(event: HandlerEvent, version: string, nowMs: number): Record<string, string> {
  const object = {
    Version: version,
    Timestamp: new Date(nowMs).toISOString(),
    TaskName: event.taskName,
    EventLevel: event.level,
    Message: event.message.slice(0, maxMessageChars),
    EventPid: String(process.pid),
    EventTid: '0',
    OperationId: event.operationId,
  };
  const overflow = JSON.stringify(object).length - maxEventChars;
  return overflow > 0 ? { ...object, Message: object.Message.slice(0, Math.max(0, object.Message.length - overflow)) } : object;
}

export class EventWriter {
  readonly #folder: string | undefined;
  readonly #version: string;
  readonly #clock: Clock;
  readonly #redactor: Redactor;
  #counter = 0;
  // Files believed to wait in the folder: counted once, then re-counted every 100 writes (the agent
  // deletes what it collects), so a run costs no directory listing.
  #pending: number | undefined;
  #chain: Promise<void> = Promise.resolve();

  constructor(folder: string | undefined, version: string, clock: Clock, redactor: Redactor) {
    this.#folder = folder;
    this.#version = version;
    this.#clock = clock;
    this.#redactor = redactor;
  }

  // Queues one event file (a no-op without an events folder); failures are dropped, never thrown.
  write(event: HandlerEvent): Promise<void> {
    const folder = this.#folder;
    if (folder === undefined) return Promise.resolve();
    const safe = { ...event, message: this.#redactor.redact(event.message) };
    this.#chain = this.#chain.then(() => this.#writeFile(folder, safe)).catch(() => undefined);
    return this.#chain;
  }

  async #writeFile(folder: string, event: HandlerEvent): Promise<void> {
    if (this.#pending === undefined || this.#counter % 100 === 0) {
      await mkdir(folder, { recursive: true });
      this.#pending = (await readdir(folder)).length;
    }
    const now = this.#clock.now();
    this.#counter = (this.#counter + 1) % 1000;
    if (this.#pending >= maxPendingFiles) return;
    this.#pending += 1;
    const name = `${now}${String(this.#counter).padStart(3, '0')}`;
    const temp = join(folder, `.${name}.tmp`);
    await writeFile(temp, JSON.stringify([toEventObject(event, this.#version, now)]), { mode: 0o644 });
    await rename(temp, join(folder, `${name}.json`));
  }
}
