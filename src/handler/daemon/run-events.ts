// What the daemon tells the agent's telemetry pipeline about a run (protocol.md §9): its start and
// its end with result and duration — never output, and the writer redacts the rest.
import type { RunJournal } from '../../runner/journal.js';
import type { HandlerEvent } from '../agent/events.js';

// The event of a run's start.
export function toStartEvent(journal: RunJournal): HandlerEvent {
  const { name, seq, runId } = journal;
  return { taskName: 'RunCommandStart', level: 'Informational', message: `name=${name} seq=${seq} runId=${runId}`, operationId: runId };
}

// The event of a run's end: result and duration in seconds — of the script's execution (from its
// launch) when it ran, else from its acceptance.
export function toEndEvent(journal: RunJournal): HandlerEvent {
  const from = journal.launchTime ?? journal.startTime;
  const started = from ? Date.parse(from) : Number.NaN;
  const duration = Number.isNaN(started) || !journal.endTime ? 'unknown' : `${(Date.parse(journal.endTime) - started) / 1000}`;
  return {
    taskName: 'RunCommandEnd',
    level: journal.state === 'Succeeded' ? 'Informational' : journal.handlerFailure ? 'Error' : 'Warning',
    message: `name=${journal.name} seq=${journal.seq} runId=${journal.runId} state=${journal.state} exitCode=${journal.exitCode} durationS=${duration} message=${journal.message}`,
    operationId: journal.runId,
  };
}
