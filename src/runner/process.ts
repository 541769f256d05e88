// The platform's process layer as the runner and the handler use it (chosen in src/platform.ts);
// the types are shared by both platforms.
import { platform } from '../platform.js';

export type { ExitRecord, ProcessIdentity, ScriptHandle, ScriptLaunch } from './process.linux.js';
export const { launchScript, attachScript, requestTermination, killRunNow, readExitRecord, readProcessIdentity, readBootId } = platform.processLayer;
