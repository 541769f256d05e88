// When to append and what: the pure planning of a blob stream (run-command.md §6, issue 4).
// The local output file is the buffer; a block is a byte range of it, never more than 4 MiB.

// Azure accepts append blocks up to 4 MiB with every service version the handler may meet.
export const maxBlockBytes = 4 * 1024 * 1024;
// Append sooner than the cadence once this much output is waiting.
export const eagerBytes = 1024 * 1024;

// A byte range of the output file, appended as one block.
export interface Block {
  // Where the bytes start, in the file and in the blob (they are the same).
  readonly offset: number;
  readonly length: number;
}

// What the stream knows when it decides whether to append now.
export interface AppendMoment {
  // Bytes of the file not yet in the blob.
  readonly pending: number;
  // Milliseconds since the last append (or since the stream started).
  readonly sinceLastMs: number;
  // The status cadence.
  readonly intervalMs: number;
  // The run is over: everything pending goes now.
  readonly finishing: boolean;
}

// The next block to append: from `offset` up to `size`, at most `maxBytes`; undefined when nothing waits.
export function toNextBlock(offset: number, size: number, maxBytes = maxBlockBytes): Block | undefined {
  if (size <= offset) return undefined;
  return { offset, length: Math.min(size - offset, maxBytes) };
}

// True when the waiting bytes should be appended now: at the cadence, as soon as 1 MiB waits, or at the end.
export function shouldAppend(moment: AppendMoment, eager = eagerBytes): boolean {
  if (moment.pending <= 0) return false;
  return moment.finishing || moment.pending >= eager || moment.sinceLastMs >= moment.intervalMs;
}
