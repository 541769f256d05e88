// Runs the script as `runAsUser` (run-command.md §4): the platform's mechanism, chosen in
// src/platform.ts (conventions: platform files).
import { platform } from '../platform.js';

export const { prepareRunAs, applyRunAs, removeWorkDir } = platform.runAs;
