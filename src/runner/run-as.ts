// Runs the script as `runAsUser` (run-command.md §4): the platform's mechanism, chosen in one
// place (conventions: platform files).
export * from './run-as.linux.js';
