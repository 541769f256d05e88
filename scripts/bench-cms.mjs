#!/usr/bin/env node
// Micro-benchmark of protected-settings decryption (not a test): N decryptions of the same kind of
// envelope the agent sends (RSA 2048, 3DES), one after the other, through
//   1. an `openssl cms -decrypt` process per decryption (the fallback path),
//   2. the long-lived rch-crypto helper (the fast path),
//   3./4. decryptProtectedSettings as the daemon calls it, on each path (base64, file checks, JSON).
// Prints CPU ms and wall ms per decryption, CPU split into this process (spawning, framing) and the
// decrypting processes. Usage: npm run build && node scripts/bench-cms.mjs [N=200]
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';

const root = fileURLToPath(new URL('..', import.meta.url));
const { CmsDecryptor } = await import(join(root, 'dist/config/cms-decryptor.js'));
const { decryptProtectedSettings, decryptionCounts } = await import(join(root, 'dist/config/protected-settings.js'));
const count = Number(process.argv[2] ?? 200);
const ticksPerMs = 100 / 1000; // USER_HZ

function openssl(args, input) {
  const result = spawnSync('openssl', args, { input, maxBuffer: 1 << 20 });
  if (result.status !== 0) throw new Error(`openssl ${args[0]} failed: ${result.stderr}`);
  return result.stdout;
}

// utime + stime of a live process, or cutime + cstime (reaped children) of this one, in ms.
function cpuMs(pid, children = false) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  const [user, system] = children ? [fields[13], fields[14]] : [fields[11], fields[12]];
  return (Number(user) + Number(system)) / ticksPerMs;
}

function selfCpuMs() {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
}

async function measure(name, once, helperPid) {
  for (let i = 0; i < 5; i += 1) await once(i); // warm-up: the helper's start, JIT
  const pid = helperPid?.();
  const before = { wall: performance.now(), self: selfCpuMs(), children: cpuMs('self', true), helper: pid ? cpuMs(pid) : 0 };
  for (let i = 0; i < count; i += 1) await once(i);
  const wall = performance.now() - before.wall;
  const self = selfCpuMs() - before.self;
  const others = cpuMs('self', true) - before.children + (pid ? cpuMs(pid) - before.helper : 0);
  if (pid && helperPid() !== pid) throw new Error('the helper was restarted during the measurement');
  const per = (ms) => Math.round((ms / count) * 1000) / 1000;
  const figure = { path: name, n: count, wall_ms_per_decrypt: per(wall), cpu_ms_per_decrypt: per(self + others), cpu_ms_this_process: per(self), cpu_ms_decrypting_processes: per(others) };
  process.stdout.write(`${JSON.stringify(figure)}\n`);
  return figure;
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'bench-cms-'));
  try {
    openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=bench', '-days', '2', '-keyout', join(dir, 'new.prv'), '-out', join(dir, 'new.crt')]);
    const thumbprint = openssl(['x509', '-in', join(dir, 'new.crt'), '-noout', '-fingerprint', '-sha1']).toString().split('=')[1].replace(/:/g, '').trim();
    const crt = join(dir, `${thumbprint}.crt`);
    const prv = join(dir, `${thumbprint}.prv`);
    renameSync(join(dir, 'new.crt'), crt);
    renameSync(join(dir, 'new.prv'), prv);
    const plaintext = JSON.stringify({ protectedParameters: [{ name: 'SECRET', value: 'bench-secret' }] });
    const envelopes = Array.from({ length: 10 }, () => openssl(['cms', '-encrypt', '-binary', '-outform', 'DER', '-des3', crt], plaintext));
    const der = (i) => envelopes[i % envelopes.length];
    process.stderr.write(`bench-cms: ${count} decryptions per path; load average before: ${loadavg().map((l) => l.toFixed(2)).join(' ')}\n`);

    const args = ['cms', '-decrypt', '-inform', 'DER', '-recip', crt, '-inkey', prv];
    const viaProcess = (i) => new Promise((resolve, reject) => {
      const child = spawn('openssl', args, { stdio: ['pipe', 'pipe', 'ignore'] });
      const out = [];
      child.stdout.on('data', (chunk) => out.push(chunk));
      child.on('close', (code) => (code === 0 && Buffer.concat(out).toString() === plaintext ? resolve() : reject(new Error(`openssl exit ${code}`))));
      child.stdin.end(der(i));
    });
    const decryptor = new CmsDecryptor(join(root, 'dist/native/rch-crypto'));
    const viaHelper = async (i) => {
      const result = await decryptor.decrypt(der(i), crt, prv);
      if (!result.ok || result.plaintext.toString() !== plaintext) throw new Error('helper failed');
    };
    const base64 = envelopes.map((envelope) => envelope.toString('base64'));
    const viaFunction = (options) => async (i) => {
      await decryptProtectedSettings(base64[i % base64.length], thumbprint, dir, options);
    };

    const figures = [];
    figures.push(await measure('openssl cms process per decryption', viaProcess));
    figures.push(await measure('rch-crypto helper (libcrypto)', viaHelper, () => decryptor.pid));
    figures.push(await measure('decryptProtectedSettings, openssl path', viaFunction({ decryptor: null })));
    figures.push(await measure('decryptProtectedSettings, libcrypto path', viaFunction({ decryptor }), () => decryptor.pid));
    const pipelinedAt = performance.now();
    await Promise.all(Array.from({ length: count }, (_, i) => viaHelper(i)));
    const pipelined = Math.round(((performance.now() - pipelinedAt) / count) * 1000) / 1000;
    decryptor.close();
    const [openssl1, helper, function1, function2] = figures;
    const ratio = (a, b, key) => Math.round((a[key] / b[key]) * 10) / 10;
    process.stderr.write(`bench-cms: load average after: ${loadavg().map((l) => l.toFixed(2)).join(' ')}; paths used: ${JSON.stringify(decryptionCounts())}\n`);
    process.stderr.write(`bench-cms: helper vs openssl process: ${ratio(openssl1, helper, 'cpu_ms_per_decrypt')}x less CPU, ${ratio(openssl1, helper, 'wall_ms_per_decrypt')}x less wall; `
      + `decryptProtectedSettings: ${ratio(function1, function2, 'cpu_ms_per_decrypt')}x less CPU, ${ratio(function1, function2, 'wall_ms_per_decrypt')}x less wall; `
      + `helper with ${count} requests pipelined: ${pipelined} wall ms each\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
