// Conventions: no import cycles in src/ (type-only imports are erased and do not count), and the
// runner never imports status or blob code (it emits events the daemon wires to them).
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const srcDir = resolve('src');

function listSources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return listSources(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

// Runtime imports of a file (static and dynamic), resolved to .ts paths.
function toImports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specifiers = [
    ...[...text.matchAll(/^import\s+(?!type\b)[^;]*?from\s+'(\.[^']+)'/gms)].map((m) => m[1]),
    ...[...text.matchAll(/^export\s+(?!type\b)[^;]*?from\s+'(\.[^']+)'/gms)].map((m) => m[1]),
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

const graph = new Map(listSources(srcDir).map((file) => [file, toImports(file)]));

describe('architecture', () => {
  it('has no import cycle between source files', () => {
    const cycle = findCycle(graph);
    expect(cycle?.map((file) => relative(srcDir, file))).toBeUndefined();
  });

  it('keeps the runner free of status and blob code', () => {
    const offenders = [...graph]
      .filter(([file]) => relative(srcDir, file).startsWith('runner/'))
      .flatMap(([file, imports]) => imports.filter((target) => /\/src\/(blob|handler)\//.test(target)).map((target) => `${relative(srcDir, file)} → ${relative(srcDir, target)}`));
    expect(offenders).toEqual([]);
  });

  it('finds the imports it checks (the scan itself works)', () => {
    expect(graph.get(join(srcDir, 'handler', 'daemon.ts'))).toContain(join(srcDir, 'runner', 'run.ts'));
    expect(findCycle(new Map([['a', ['b']], ['b', ['a']]]))).toEqual(['a', 'b', 'a']);
  });
});
