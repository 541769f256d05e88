// NODE_EXTRA_CA_CERTS, trusted from the daemon's first TLS connection instead of from its start.
//
// Node 20 reads the file at every start, before any JavaScript runs, and builds its whole root
// store then (+30 ms with an empty file, +50–60 ms and 1.7 MB with a distribution's bundle, 2 CPUs),
// whether the process ever makes a TLS connection or not. A VM whose administrator set the variable
// for every process (a proxy with its own CA) would pay that on every cold `enable`, before the
// daemon can answer. So the daemon is started with the path under `deferredCaCertsVariable`
// instead (toDaemonEnvironment: the native enable client does the same, rch-enable.c), puts
// NODE_EXTRA_CA_CERTS back in its environment for its scripts, and trusts the file's certificates
// in every TLS context that does not bring its own `ca`, as node would have: bundled roots + the
// file. The file is read once, at the first TLS context; one context is built per combination of
// the other settings and shared (building one with ~300 authorities costs ~45 ms).
import { readFileSync } from 'node:fs';
import type { SecureContext, SecureContextOptions } from 'node:tls';

export const extraCaCertsVariable = 'NODE_EXTRA_CA_CERTS';
export const deferredCaCertsVariable = 'RCH_DEFERRED_EXTRA_CA_CERTS';

// The environment a daemon is started with: NODE_EXTRA_CA_CERTS moved to the deferred name.
export function toDaemonEnvironment(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const file = env[extraCaCertsVariable];
  if (file === undefined || file === '') return env;
  const { [extraCaCertsVariable]: _moved, ...rest } = env;
  return { ...rest, [deferredCaCertsVariable]: file };
}

let pending: { file: string; warn: (message: string) => void } | undefined;

// In the daemon, at its start: NODE_EXTRA_CA_CERTS back in `env` (the daemon's scripts and children
// see it as ever), and its certificates trusted from the first TLS connection on (beforeTls). The
// file's path when it was deferred, else undefined (node loaded it itself, or there is none).
export function adoptDeferredCaCertificates(env: NodeJS.ProcessEnv, warn: (message: string) => void): string | undefined {
  const file = env[deferredCaCertsVariable];
  delete env[deferredCaCertsVariable];
  if (file === undefined || file === '') return undefined;
  env[extraCaCertsVariable] = file;
  pending = { file, warn };
  return file;
}

// Called by every module of the daemon that opens network connections (fetch, node:https), before
// it does (test/architecture checks that each one does): a deferred CA file is trusted from then on.
// node:tls stays unloaded in a daemon that never makes a connection (≈ 2 MB of its idle memory).
export function beforeTls(): void {
  if (pending === undefined) return;
  const { file, warn } = pending;
  pending = undefined;
  trustExtraCaCertificates(file, warn);
}

// The options tls.createSecureContext reads besides `ca` (node 20's _tls_common.js): a context
// built without any of them is the default one, which every connection without them can share.
const shapingOptions = [
  'allowPartialTrustChain', 'cert', 'ciphers', 'clientCertEngine', 'crl', 'dhparam', 'ecdhCurve', 'honorCipherOrder', 'key',
  'maxVersion', 'minVersion', 'passphrase', 'pfx', 'privateKeyEngine', 'privateKeyIdentifier', 'secureOptions',
  'secureProtocol', 'sessionIdContext', 'sessionTimeout', 'sigalgs', 'ticketKeys',
] as const;

// Makes every TLS context without its own `ca` trust node's bundled roots and the PEM certificates
// in `file`. A file that cannot be read or parsed is reported once and ignored, as node does.
export function trustExtraCaCertificates(file: string, warn: (message: string) => void): void {
  const tls = process.getBuiltinModule('node:tls');
  const original = tls.createSecureContext;
  let authorities: string[] | null | undefined; // undefined: not read yet; null: unusable
  const shared = new Map<string, SecureContext>();
  const build = (options: SecureContextOptions | undefined, key: string | undefined): SecureContext => {
    const context = original({ ...options, ca: authorities ?? undefined });
    if (key !== undefined) shared.set(key, context);
    return context;
  };
  tls.createSecureContext = function createSecureContext(options?: SecureContextOptions): SecureContext {
    if (options?.ca || authorities === null) return original(options);
    const key = sharedKey(options, tls.DEFAULT_CIPHERS);
    const known = key === undefined ? undefined : shared.get(key);
    if (known !== undefined) return known;
    if (authorities === undefined) {
      try {
        authorities = [...tls.rootCertificates, readFileSync(file, 'utf8')];
        return build(options, key);
      } catch (error) {
        authorities = null;
        warn(`ignoring the extra CA certificates in ${file} (${extraCaCertsVariable}): ${error instanceof Error ? error.message : String(error)}`);
        return original(options);
      }
    }
    return build(options, key);
  };
}

// The key of the shared context for these options: their context-shaping values (node's default
// cipher list counts as none); undefined when one is not a plain value (keys, certificates).
function sharedKey(options: SecureContextOptions | undefined, defaultCiphers: string): string | undefined {
  const parts: [string, string | number | boolean][] = [];
  for (const name of shapingOptions) {
    const value: unknown = (options as Record<string, unknown> | undefined)?.[name];
    if (value === undefined || value === null || (name === 'ciphers' && value === defaultCiphers)) continue;
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') return undefined;
    parts.push([name, value]);
  }
  return JSON.stringify(parts);
}
