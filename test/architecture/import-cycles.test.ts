// Conventions: no import cycle in src/, type-only imports included, and no upward arrow between
// layers — from the bottom: util and errors, config, runner, blob, platform, the handler's agent
// files / state / infrastructure, the daemon, the commands and the operator CLI, then cli.ts. The
// runner never imports status or blob code (it emits events the daemon wires to them).
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const srcDir = resolve('src');

// Layer of a source file, by its path below src/ (first matching prefix).
const layers: ReadonlyArray<readonly [prefix: string, layer: number]> = [
  ['util/', 0],
  ['errors.ts', 0],
  ['config/', 1],
  ['runner/', 2],
  ['blob/', 3],
  ['platform/', 4],
  ['handler/agent/', 5],
  ['handler/state/', 5],
  ['handler/infra/', 5],
  ['handler/daemon/', 6],
  ['handler/commands/', 7],
  ['handler/cli/', 7],
  ['cli.ts', 8],
];

function toLayer(file: string): number {
  const rel = relative(srcDir, file);
  const match = layers.find(([prefix]) => rel === prefix || rel.startsWith(prefix));
  if (!match) throw new Error(`${rel} belongs to no layer: add it to the architecture test`);
  return match[1];
}

function listSources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return listSources(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

// Every relative import of a file — static, type-only, re-exports and dynamic — resolved to .ts paths.
function toImports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specifiers = [
    ...[...text.matchAll(/^(?:import|export)\s[^;]*?from\s+'(\.[^']+)'/gms)].map((m) => m[1]),
    ...[...text.matchAll(/import\('(\.[^']+)'\)/g)].map((m) => m[1]),
  ];
  return specifiers.map((specifier) => resolve(dirname(file), (specifier ?? '').replace(/\.js$/, '.ts')));
}

function findCycle(graph: Map<string, string[]>): string[] | undefined {
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (node: string): string[] | undefined => {
    if (state.get(node) === 'done') return undefined;
    if (state.get(node) === 'visiting') return [...stack.slice(stack.indexOf(node)), node];
    state.set(node, 'visiting');
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      const cycle = visit(next);
      if (cycle) return cycle;
    }
    stack.pop();
    state.set(node, 'done');
    return undefined;
  };
  for (const node of graph.keys()) {
    const cycle = visit(node);
    if (cycle) return cycle;
  }
  return undefined;
}

function findUpwardArrows(graph: Map<string, string[]>): string[] {
  return [...graph].flatMap(([file, imports]) =>
    imports.filter((target) => toLayer(target) > toLayer(file)).map((target) => `${relative(srcDir, file)} → ${relative(srcDir, target)}`),
  );
}

const graph = new Map(listSources(srcDir).map((file) => [file, toImports(file)]));

describe('architecture', () => {
  it('has no import cycle between source files, type-only imports included', () => {
    const cycle = findCycle(graph);
    expect(cycle?.map((file) => relative(srcDir, file))).toBeUndefined();
  });

  it('has no upward arrow: no module imports from a layer above its own', () => {
    expect(findUpwardArrows(graph)).toEqual([]);
  });

  it('keeps the runner free of status and blob code', () => {
    const offenders = [...graph]
      .filter(([file]) => relative(srcDir, file).startsWith('runner/'))
      .flatMap(([file, imports]) => imports.filter((target) => /\/src\/(blob|handler)\//.test(target)).map((target) => `${relative(srcDir, file)} → ${relative(srcDir, target)}`));
    expect(offenders).toEqual([]);
  });

  it('has every module that opens network connections trust a deferred NODE_EXTRA_CA_CERTS first (beforeTls)', () => {
    // fetch, node:https / node:tls / node:http2: each such module calls beforeTls()
    // (util/extra-ca-certificates.ts), or a daemon started with the CA file deferred would not trust it.
    const opensConnections = (text: string): boolean => /\bfetch\(|'node:(https|tls|http2)'/.test(text.replace(/^\s*\/\/.*$/gm, '').replace(/import type [^;]*;/g, ''));
    const users = [...graph.keys()].filter((file) => !file.endsWith('extra-ca-certificates.ts') && opensConnections(readFileSync(file, 'utf8')));
    expect(users.map((file) => relative(srcDir, file)).sort()).toEqual(['blob/bounded-http-client.ts', 'runner/sources/http-download.ts', 'util/imds.ts']);
    expect(users.filter((file) => !/\bbeforeTls\(\)/.test(readFileSync(file, 'utf8'))).map((file) => relative(srcDir, file))).toEqual([]);
  });

  it('finds the imports it checks (the scan itself works)', () => {
    expect(graph.get(join(srcDir, 'handler', 'daemon', 'settings-decisions.ts'))).toContain(join(srcDir, 'runner', 'run.ts'));
    // A type-only import counts.
    expect(graph.get(join(srcDir, 'runner', 'run-deps.ts'))).toContain(join(srcDir, 'runner', 'platform-contract.ts'));
    expect(findCycle(new Map([['a', ['b']], ['b', ['a']]]))).toEqual(['a', 'b', 'a']);
    expect(findUpwardArrows(new Map([[join(srcDir, 'util', 'x.ts'), [join(srcDir, 'config', 'y.ts')]]]))).toEqual(['util/x.ts → config/y.ts']);
  });
});
