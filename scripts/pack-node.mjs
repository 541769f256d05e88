// The Linux package's node, xz-compressed (used by scripts/package.mjs): the stripped node deflates
// to 32 MB, over the package target (targets.md: ≤ 30 MB); xz with the x86 branch filter takes it
// to 21 MB. The zip stores bin/node.xz as is (the agent's unzip knows only deflate and stored), and
// the shim's first command unpacks it with dist/native/rch-unpack (src/native/rch-unpack.c),
// checked against the sha256 that stampShim writes into the shim.
// Compressing takes ≈ 80 s of CPU, so the result is kept in build/cache/, keyed by node's sha256.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

// x86 branch-call-jump filter, then LZMA2 at preset 9 extreme (64 MiB dictionary: the unpacker needs
// ≈ 65 MiB of memory). A change here must change the cache key.
const XZ_ARGS = ['--x86', '--lzma2=preset=9e', '--check=crc64', '--threads=1'];
const CACHE_TAG = 'x86-9e';

function sha256Of(file) {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

// Writes `xz -c file` to `target` through a temp name (parallel packagers share the cache).
function compress(file, target) {
  const temp = `${target}.${process.pid}.tmp`;
  const fd = fs.openSync(temp, 'w');
  let result;
  try {
    result = spawnSync('xz', [...XZ_ARGS, '--stdout', file], { stdio: ['ignore', fd, 'inherit'] });
  } finally {
    fs.closeSync(fd);
  }
  if (result.error || result.status !== 0) {
    fs.rmSync(temp, { force: true });
    const cause = result.error?.code === 'ENOENT' ? 'xz is not installed (apt-get install xz-utils)' : result.error?.message ?? `exit ${result.status}`;
    throw new Error(`compressing node with xz failed: ${cause}`);
  }
  fs.renameSync(temp, target);
}

// Replaces `<stage>/bin/node` with `<stage>/bin/node.xz` and returns the sha256 of the node it
// unpacks to. The compressed copy comes from `cacheDir` when this node was compressed before.
export function packNode(stage, cacheDir, log) {
  const node = path.join(stage, 'bin', 'node');
  const sha256 = sha256Of(node);
  const cached = path.join(cacheDir, `node-${sha256}-${CACHE_TAG}.xz`);
  if (!fs.existsSync(cached)) {
    log('compressing node with xz (≈ 80 s of CPU; cached in build/cache/ afterwards)');
    fs.mkdirSync(cacheDir, { recursive: true });
    compress(node, cached);
    for (const old of fs.readdirSync(cacheDir)) {
      if (/^node-[0-9a-f]{64}-.+\.xz$/.test(old) && path.join(cacheDir, old) !== cached) fs.rmSync(path.join(cacheDir, old), { force: true });
    }
  }
  fs.copyFileSync(cached, `${node}.xz`);
  fs.rmSync(node);
  return sha256;
}

// Fills the shim's `node_sha256=` line (empty in the source tree, which has no node.xz).
export function stampShim(shim, sha256) {
  const text = fs.readFileSync(shim, 'utf8');
  if (!/^node_sha256=$/m.test(text)) throw new Error(`${shim} has no empty node_sha256= line to fill`);
  fs.writeFileSync(shim, text.replace(/^node_sha256=$/m, `node_sha256=${sha256}`));
}
