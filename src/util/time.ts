// Clocks and timers that tests can replace, and the protocol's time format.

export interface Clock {
  now(): number;
}

// A clock that also arms timers (runs and the scheduler take one: tests drive it by hand). Timers
// and deadlines follow the monotonic clock, which no NTP step or manual change of the wall clock
// moves (issue 13, #14); now() is for what is shown (startTime, endTime).
export interface TimerClock extends Clock {
  // Milliseconds on the machine's monotonic clock: the same in every process of one boot.
  monotonicMs(): number;
  // Calls `callback` once `delayMs` have passed on the monotonic clock; cancel() prevents it.
  setTimer(callback: () => void, delayMs: number): { cancel(): void };
}

// CLOCK_MONOTONIC (libuv's hrtime), shared by the processes of one boot, unlike performance.now().
const readMonotonicMs = (): number => Number(process.hrtime.bigint() / 1_000_000n);

export const systemClock: TimerClock = {
  now: () => Date.now(),
  monotonicMs: readMonotonicMs,
  setTimer: (callback, delayMs) => setLongTimeout(callback, delayMs),
};

// RFC 3339 UTC to the second, as the status file and instance view use (protocol.md §7).
export function toRfc3339(epochMs: number): string {
  return new Date(epochMs).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

// Resolves after `ms` milliseconds.
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

const maxTimerMs = 2 ** 31 - 1;

// A timeout that may exceed setTimeout's 24.8-day limit (timeoutInSeconds goes up to 2^31 s),
// counted on the monotonic clock: a step of the wall clock neither stretches nor fires it.
export function setLongTimeout(callback: () => void, delayMs: number): { cancel(): void } {
  let timer: NodeJS.Timeout | undefined;
  const due = readMonotonicMs() + Math.max(0, delayMs);
  const arm = (): void => {
    const remaining = due - readMonotonicMs();
    if (remaining <= 0) {
      callback();
      return;
    }
    timer = setTimeout(arm, Math.min(remaining, maxTimerMs));
  };
  arm();
  return { cancel: () => clearTimeout(timer) };
}
