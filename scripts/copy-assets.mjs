// Copies the non-TypeScript files the handler reads at run time into dist/: the built-in command
// catalogue (src/runner/commands/ → dist/runner/commands/), which the package ships with dist/.
// Also removes compiled files whose source is gone (tsc never deletes), so the package holds no
// module that was moved or removed.
import { cpSync, existsSync, readdirSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const assets = [['src/runner/commands', 'dist/runner/commands']];

for (const [from, to] of assets) {
  // Replace, so a command removed from the source does not linger in dist/.
  rmSync(join(root, to), { recursive: true, force: true });
  cpSync(join(root, from), join(root, to), { recursive: true });
}

// dist/**/*.js without a src/**/*.ts (dist/native and the copied assets are not tsc's).
function pruneStale(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    const rel = relative(join(root, 'dist'), path);
    if (entry.isDirectory()) {
      if (rel === 'native' || assets.some(([, to]) => join(root, to) === path)) continue;
      pruneStale(path);
      if (readdirSync(path).length === 0) rmSync(path, { recursive: true });
    } else if (entry.name.endsWith('.js') && !existsSync(join(root, 'src', rel.replace(/\.js$/, '.ts')))) {
      rmSync(path);
    }
  }
}
pruneStale(join(root, 'dist'));
