// `enable`: make sure a status file exists for (name, seq) and a daemon serves this install, then
// exit — fast, idempotent, never running or waiting for the script (protocol.md §4).
import { isValidName, singleConfigName } from '../../config/run-command.js';
import { toAgentVariables } from '../../runner/parameters.js';
import { isActiveJournal } from '../../runner/journal.js';
import { makePendingStatus, reconcileStatusFile, writeStatusFileIfMissing } from '../agent/status-file.js';
import type { HandlerContext } from '../infra/context.js';
import { ensureDaemon } from '../infra/daemon-control.js';
import type { Log } from '../infra/logger.js';

// Reads the run command's identity from the agent's environment variables. Without
// ConfigExtensionName (an agent without multi-config) it is the handler's single configuration,
// as in Microsoft's handler (protocol.md §4, §5).
export function readCommandIdentity(env: NodeJS.ProcessEnv): { name: string; seq: number } | { error: string } {
  const given = env['ConfigExtensionName'];
  const name = given === undefined || given === '' ? singleConfigName : given;
  const seqText = env['ConfigSequenceNumber'] ?? '';
  if (name !== singleConfigName && !isValidName(name)) return { error: 'ConfigExtensionName is not a valid run command name ([A-Za-z0-9][A-Za-z0-9._-]*, at most 128 characters)' };
  if (!/^\d{1,15}$/.test(seqText)) return { error: 'ConfigSequenceNumber is not a non-negative integer' };
  return { name, seq: Number(seqText) };
}

// Writes the run's status file if the agent has none: from the journal if the run is known, else
// Pending (the daemon does the same for the native client's enable: fast-enable.ts).
export async function ensureStatusFile(context: HandlerContext, name: string, seq: number): Promise<void> {
  const { paths, store } = context;
  const current = await store.currentRun(name);
  if (current.kind === 'run' && current.record.seq === seq && current.journal.kind === 'present') {
    const journal = current.journal.value;
    // A run that ended: its status must say so, even if a killed daemon never wrote it (issue 13).
    if (isActiveJournal(journal)) await writeStatusFileIfMissing(paths.statusFolder, journal, current.runDir, Date.now());
    else await reconcileStatusFile(paths.statusFolder, journal, current.runDir, Date.now());
    return;
  }
  await writeStatusFileIfMissing(paths.statusFolder, makePendingStatus(name, seq), undefined, Date.now());
}

// Runs the enable command; returns the process exit code.
export async function runEnable(context: HandlerContext, env: NodeJS.ProcessEnv, log: Log): Promise<number> {
  const identity = readCommandIdentity(env);
  if ('error' in identity) {
    log.error(`enable refused: ${identity.error}`);
    process.stderr.write(`enable: ${identity.error}\n`);
    return 1;
  }
  await ensureStatusFile(context, identity.name, identity.seq);
  const daemon = await ensureDaemon(context, log);
  if (daemon !== 'starting') await context.daemon.enable(identity.name, identity.seq, toAgentVariables(env));
  log.info('enable', { name: identity.name, seq: identity.seq, daemon });
  return 0;
}
