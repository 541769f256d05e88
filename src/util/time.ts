// Clocks and timers that tests can replace, and the protocol's time format.

export interface Clock {
  now(): number;
}

// A clock that also arms timers (runs and the scheduler take one: tests drive it by hand).
export interface TimerClock extends Clock {
  // Calls `callback` once `delayMs` have passed; cancel() before that prevents it.
  setTimer(callback: () => void, delayMs: number): { cancel(): void };
}

export const systemClock: TimerClock = { now: () => Date.now(), setTimer: (callback, delayMs) => setLongTimeout(callback, delayMs) };

// RFC 3339 UTC to the second, as the status file and instance view use (protocol.md §7).
export function toRfc3339(epochMs: number): string {
  return new Date(epochMs).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

// Resolves after `ms` milliseconds.
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

const maxTimerMs = 2 ** 31 - 1;

// A timeout that may exceed setTimeout's 24.8-day limit (timeoutInSeconds goes up to 2^31 s).
export function setLongTimeout(callback: () => void, delayMs: number): { cancel(): void } {
  let timer: NodeJS.Timeout | undefined;
  const due = Date.now() + Math.max(0, delayMs);
  const arm = (): void => {
    const remaining = due - Date.now();
    if (remaining <= 0) {
      callback();
      return;
    }
    timer = setTimeout(arm, Math.min(remaining, maxTimerMs));
  };
  arm();
  return { cancel: () => clearTimeout(timer) };
}
