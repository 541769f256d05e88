// The esbuild bundle of the handler, for both zips (scripts/package.mjs, scripts/package-windows.mjs):
// dist/cli.js plus lazily loaded chunks, no node_modules, and `enable`'s own entry in one file.
import fs from 'node:fs';
import path from 'node:path';
import * as esbuild from 'esbuild';
import { fail, root } from './package-common.mjs';

// zod re-exports every locale (`z.locales`, `z.core.locales`: ~360 KB, which `z` carries as one
// object, so the bundler cannot drop them); the handler uses only the default English messages.
// This swaps zod's locales index for one that exports `en` alone: less to load on each `enable`.
const zodEnglishOnly = {
  name: 'zod-english-only',
  setup(build) {
    build.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) => {
      if (!/[\\/]node_modules[\\/]zod[\\/]v4[\\/](classic|core|mini)[\\/][^\\/]+\.js$/.test(args.importer)) return undefined;
      return { path: path.join(path.dirname(args.importer), '..', 'locales', 'index.js'), namespace: 'zod-english-only' };
    });
    build.onLoad({ filter: /.*/, namespace: 'zod-english-only' }, (args) => ({
      contents: `export { default as en } from ${JSON.stringify(path.join(path.dirname(args.path), 'en.js'))};\n`,
      resolveDir: path.dirname(args.path),
    }));
  },
};

// winston's debug messages go through @dabh/diagnostics, whose development build (chosen when
// NODE_ENV is not 'production') loads colorspace, kuler and their colour tables to print them in
// colour when DEBUG names winston. The daemon never asks for them: the production build (the same
// API, every message dropped) keeps that code out of the bundle and out of the idle daemon's memory.
const diagnosticsProduction = {
  name: 'diagnostics-production',
  setup(build) {
    build.onResolve({ filter: /^@dabh\/diagnostics$/ }, (args) => build.resolve('@dabh/diagnostics/node/production.js', { resolveDir: args.resolveDir, kind: args.kind }));
  },
};

// `enable` is an entry of its own (src/handler/commands/enable-main.ts): the CLI's import of it stays
// an import of the file the enable build writes, at the path tsc gives it, so that the command the
// agent runs on every goal state loads one file with only what it needs (none of the shared chunks,
// which hold zod's whole core for the daemon's settings schema).
const enableApart = {
  name: 'enable-apart',
  setup(build) {
    build.onResolve({ filter: /^\.\/handler\/commands\/enable-main\.js$/ }, (args) => (args.importer === path.join(root, 'src', 'cli.ts') ? { path: args.path, external: true } : undefined));
  },
};

// The Linux zip leaves the Windows platform value out (src/platform/select.ts chooses it on win32
// only), with its process layer, RunAs, decryption and node:crypto. The Windows zip keeps both.
const linuxOnly = {
  name: 'linux-only',
  setup(build) {
    build.onResolve({ filter: /^\.\/windows\.js$/ }, (args) => (args.importer === path.join(root, 'src', 'platform', 'select.ts') ? { path: args.path, namespace: 'linux-zip' } : undefined));
    build.onLoad({ filter: /.*/, namespace: 'linux-zip' }, () => ({ contents: 'export const windowsPlatform = undefined;\n', loader: 'js' }));
  },
};

// In enable's file every dynamic import of a module (not of a Node builtin) is a stub that throws
// if ever loaded: enable never decrypts, never logs through winston and never streams, and without
// code splitting those imports would be inlined, execa, winston and all.
const enableOnly = {
  name: 'enable-only',
  setup(build) {
    build.onResolve({ filter: /.*/ }, (args) => (args.kind === 'dynamic-import' && !args.path.startsWith('node:') ? { path: args.path, namespace: 'not-in-enable' } : undefined));
    build.onLoad({ filter: /.*/, namespace: 'not-in-enable' }, (args) => ({
      contents: `throw new Error(${JSON.stringify(`${args.path} is not in the enable bundle (scripts/bundle.mjs)`)});\n`,
      loader: 'js',
    }));
  },
};

// What both builds share: ESM for node 20, a `require` for the CommonJS dependencies' builtins,
// linked source maps, whitespace and syntax minified (identifiers stay: stack frames keep names).
const bundleOptions = {
  absWorkingDir: root,
  // Laid out as if in the tree's dist/ (then written to the stage), so that the maps name the
  // sources as ../src/... from dist/: `<base dir>/src/handler/daemon.ts:12:5` in a stack trace.
  outdir: path.join(root, 'dist'),
  write: false,
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: 'linked',
  sourcesContent: false,
  banner: { js: "import { createRequire as __rchCreateRequire } from 'node:module'; const require = __rchCreateRequire(import.meta.url);" },
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: 'warning',
  metafile: true,
};

// Whether a source map maps nothing (a chunk of esbuild's own helpers): it is left out of the
// package, and its chunk's link to it with it — one file fewer (targets.md: fewer than 50).
function isEmptyMap(file) {
  return file.path.endsWith('.map') && JSON.parse(file.text).sources.length === 0;
}

// Writes a build's output files under stage/dist; returns how many JS files and their bytes.
function writeOutputs(stage, result) {
  if (result.errors.length > 0) fail('esbuild failed');
  const emptyMaps = new Set(result.outputFiles.filter(isEmptyMap).map((file) => file.path));
  for (const file of result.outputFiles) {
    if (emptyMaps.has(file.path)) continue;
    const target = path.join(stage, 'dist', path.relative(path.join(root, 'dist'), file.path));
    const contents = emptyMaps.has(`${file.path}.map`) ? file.text.replace(/\n\/\/# sourceMappingURL=\S+\n?$/, '\n') : file.contents;
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, contents);
  }
  const outputs = Object.entries(result.metafile.outputs).filter(([file]) => file.endsWith('.js'));
  return { files: outputs.length, bytes: outputs.reduce((sum, [, output]) => sum + output.bytes, 0) };
}

// Bundles src/cli.ts into stage/dist: dist/cli.js (the path the shims and the daemon's argv use)
// and chunks for what the code imports dynamically (per-command modules, winston, the storage SDK),
// each with a linked source map (the daemon reads them when it logs a stack:
// src/util/source-mapped-stack.ts); and `enable`'s entry, dist/handler/commands/enable-main.js, in
// one file. Node builtins stay imports; the CommonJS
// dependencies get a `require` for theirs. `platform`: 'linux' or 'windows', the zip's.
export async function bundle(stage, log, platform) {
  const platformPlugins = platform === 'linux' ? [linuxOnly] : [];
  const main = writeOutputs(stage, await esbuild.build({
    ...bundleOptions,
    entryPoints: { cli: 'src/cli.ts' },
    chunkNames: 'chunks/[name]-[hash]',
    splitting: true,
    plugins: [zodEnglishOnly, diagnosticsProduction, ...platformPlugins, enableApart],
  }));
  const enable = writeOutputs(stage, await esbuild.build({
    ...bundleOptions,
    entryPoints: { 'handler/commands/enable-main': 'src/handler/commands/enable-main.ts' },
    splitting: false,
    plugins: [zodEnglishOnly, diagnosticsProduction, ...platformPlugins, enableOnly],
  }));
  log(`bundled ${main.files + enable.files} files, ${((main.bytes + enable.bytes) / 1048576).toFixed(1)} MiB of JS (enable: ${(enable.bytes / 1024).toFixed(0)} KiB)`);
}
