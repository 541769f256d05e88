import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as esbuild from 'esbuild';
import { describe, expect, it } from 'vitest';
import { sourceMappedStack } from '../../src/util/source-mapped-stack.js';
import { useTempDir } from '../helpers/temp-dir.js';

// Line 4 of the source throws; the bundle puts it elsewhere (minified, after a banner).
const source = ['// a module the bundle flattens', 'export function outer(): void {', '  const value = 1;', "  if (value > 0) throw new Error('from line 4');", '}', ''].join('\n');

// Bundles `src/thrower.ts` the way the package does (ESM, minified whitespace, a linked map beside
// the output) and returns the stack a real node process prints for the error it throws.
async function bundledStack(dir: string, nodeFlags: string[] = []): Promise<{ stack: string; bundle: string }> {
  await mkdir(join(dir, 'src'), { recursive: true });
  await writeFile(join(dir, 'src', 'thrower.ts'), source);
  const bundle = join(dir, 'dist', 'chunks', 'thrower.js');
  await esbuild.build({
    absWorkingDir: dir,
    entryPoints: [join(dir, 'src', 'thrower.ts')],
    outfile: bundle,
    bundle: true,
    format: 'esm',
    platform: 'node',
    sourcemap: 'linked',
    sourcesContent: false,
    minifyWhitespace: true,
    banner: { js: 'const banner = 0;' },
    logLevel: 'silent',
  });
  const script = `import(${JSON.stringify(pathToFileURL(bundle).href)}).then((m) => { try { m.outer(); } catch (e) { process.stdout.write(e.stack); } });`;
  return { stack: execFileSync(process.execPath, [...nodeFlags, '--input-type=module', '-e', script], { encoding: 'utf8' }), bundle };
}

describe('sourceMappedStack', () => {
  const dir = useTempDir('stack');

  it('points a bundled frame at the original source line, keeping the function name', async () => {
    const { stack, bundle } = await bundledStack(dir());
    expect(stack).toContain(`${pathToFileURL(bundle).href}:`);
    const mapped = sourceMappedStack(stack) ?? '';
    expect(mapped.split('\n')[0]).toBe('Error: from line 4');
    expect(mapped.split('\n')[1]).toBe(`    at Module.outer (${join(dir(), 'src', 'thrower.ts')}:4:24)`);
    expect(mapped).not.toContain('thrower.js');
    // The same place Node's own source-map support names.
    const byNode = (await bundledStack(dir(), ['--enable-source-maps'])).stack;
    expect(byNode.split('\n')[1]).toBe(mapped.split('\n')[1]);
  });

  it('leaves frames without a map, and anything that is not a frame, as they are', async () => {
    const stack = ['Error: at /no/such/file.js:1:2', `    at f (${join(dir(), 'plain.js')}:3:4)`, '    at node:internal/process/task_queues:95:5', '    at file:///no/map/here.mjs:7:8'].join('\n');
    await writeFile(join(dir(), 'plain.js'), 'export {};\n');
    expect(sourceMappedStack(stack)).toBe(stack);
    expect(sourceMappedStack(undefined)).toBeUndefined();
  });
});
