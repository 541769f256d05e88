// Stack traces through the package's source maps, resolved only when a stack is logged.
// Node's own source-map support (`process.setSourceMapsEnabled`) reads and parses the map of every
// module at load and scans each module's text for line lengths, then keeps it all for the life of
// the process: ≈ 7 MB of the idle daemon's resident memory for a stack it logs perhaps never.
// Here a frame's `<file>.js.map` (esbuild writes linked maps next to their files) is read when a
// stack is mapped, and held only weakly afterwards.
import { readFileSync } from 'node:fs';
import { SourceMap, type SourceMapPayload } from 'node:module';
import { dirname, isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

// A frame's location: `file:///…/x.js:12:5` or `/…/x.js:12:5`, at the end of the frame or before `)`.
const framePosition = /(file:\/\/\/[^():\s]+\.[cm]?js|\/[^():\s]+\.[cm]?js):(\d+):(\d+)(?=\)?$)/;

// Each file's parsed map (null: it has none), for as long as the garbage collector leaves it.
const maps = new Map<string, WeakRef<SourceMap> | null>();

function loadMap(file: string): SourceMap | undefined {
  const known = maps.get(file);
  if (known === null) return undefined;
  const live = known?.deref();
  if (live) return live;
  let map: SourceMap | undefined;
  try {
    map = new SourceMap(JSON.parse(readFileSync(`${file}.map`, 'utf8')) as SourceMapPayload);
  } catch {
    map = undefined;
  }
  maps.set(file, map ? new WeakRef(map) : null);
  return map;
}

// `/base/src/x.ts:12:5` for a position of `file` its map knows, else undefined.
function originalPosition(file: string, line: number, column: number): string | undefined {
  const entry = loadMap(file)?.findEntry(line - 1, column - 1);
  if (!entry || !('originalSource' in entry)) return undefined;
  const source = entry.originalSource.startsWith('file://') ? fileURLToPath(entry.originalSource) : entry.originalSource;
  const path = isAbsolute(source) ? source : resolve(dirname(file), source);
  return `${path}:${entry.originalLine + 1}:${entry.originalColumn + 1}`;
}

// `stack` with every frame in a file that has a source map pointing at the original source instead
// (the function names stay: the bundle keeps identifiers); other lines as they are.
export function sourceMappedStack(stack: string | undefined): string | undefined {
  if (stack === undefined) return undefined;
  return stack
    .split('\n')
    .map((line) => {
      const match = framePosition.exec(line);
      if (!match?.[1] || !line.trimStart().startsWith('at ')) return line;
      const file = match[1].startsWith('file://') ? fileURLToPath(match[1]) : match[1];
      const original = originalPosition(file, Number(match[2]), Number(match[3]));
      return original === undefined ? line : `${line.slice(0, match.index)}${original}${line.slice(match.index + match[0].length)}`;
    })
    .join('\n');
}
