// Copies the non-TypeScript files the handler reads at run time into dist/: the built-in command
// catalogue (src/runner/commands/ → dist/runner/commands/), which the package ships with dist/.
import { cpSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const assets = [['src/runner/commands', 'dist/runner/commands']];

for (const [from, to] of assets) {
  // Replace, so a command removed from the source does not linger in dist/.
  rmSync(join(root, to), { recursive: true, force: true });
  cpSync(join(root, from), join(root, to), { recursive: true });
}
