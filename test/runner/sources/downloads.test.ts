import { open, readFile, readdir, rm, stat } from 'node:fs/promises';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { errorCodes, HandlerError } from '../../../src/errors.js';
import { downloadArtifacts, downloadScript, TakenNames, type DownloadDeps } from '../../../src/runner/sources/downloads.js';
import { isTextScript, makeTextScriptTransform, normalizeTextScript } from '../../../src/runner/sources/text-script.js';
import { serve, startLoopbackServer, type LoopbackServer } from '../../helpers/loopback-http.js';
import { useTempDir } from '../../helpers/temp-dir.js';

const dir = useTempDir('downloads');
const deps: DownloadDeps = { bounds: { totalMs: 5000, attempts: 2, backoffMs: 5 } };
let server: LoopbackServer;

beforeEach(async () => {
  server = await startLoopbackServer();
});
afterEach(async () => {
  await server.close();
});

async function errorOf(promise: Promise<unknown>): Promise<HandlerError> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(HandlerError);
  return error as HandlerError;
}

const utf16le = (text: string): Buffer => Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]);
const utf16be = (text: string): Buffer => Buffer.concat([Buffer.from([0xfe, 0xff]), Buffer.from(text, 'utf16le').swap16()]);

describe('text scripts', () => {
  it('are recognised by extension or by a #! first line, BOM or not', () => {
    for (const name of ['a.sh', 'a.PY', 'a.pl', 'a.txt', 'a.ps1']) expect(isTextScript(name, Buffer.from('x'))).toBe(true);
    expect(isTextScript('run', Buffer.from('#!/bin/sh\n'))).toBe(true);
    expect(isTextScript('run', utf16le('#!/bin/sh\n'))).toBe(true);
    expect(isTextScript('tool.bin', Buffer.from([0x7f, 0x45, 0x4c, 0x46]))).toBe(false);
  });

  it('lose a UTF-8 BOM, UTF-16 is transcoded, CRLF becomes LF, lone CR stays', () => {
    expect(normalizeTextScript(Buffer.from('\uFEFFecho é\r\nx\ry\r\n')).toString('utf8')).toBe('echo é\nx\ry\n');
    expect(normalizeTextScript(utf16le('echo ü €\r\n')).toString('utf8')).toBe('echo ü €\n');
    expect(normalizeTextScript(utf16be('echo ü\r\n')).toString('utf8')).toBe('echo ü\n');
    expect(normalizeTextScript(Buffer.from([0x65, 0xe9, 0x0d, 0x0a]))).toEqual(Buffer.from([0x65, 0xe9, 0x0a]));
    expect(normalizeTextScript(Buffer.from('Write-Host ü\r\n'), { utf8Bom: true }).toString('utf8')).toBe('\uFEFFWrite-Host ü\n');
  });
});

// The normalisation cases (input, options, expected output), fed whole and in pieces.
const normalisationCases: Array<[string, Buffer, { utf8Bom?: boolean }, Buffer]> = [
  ['UTF-8 BOM, CRLF, lone CR', Buffer.from('\uFEFFecho é\r\nx\ry\r\n'), {}, Buffer.from('echo é\nx\ry\n')],
  ['UTF-16LE', utf16le('echo ü €\r\n'), {}, Buffer.from('echo ü €\n')],
  ['UTF-16BE', utf16be('echo ü\r\n'), {}, Buffer.from('echo ü\n')],
  ['UTF-16LE surrogate pairs', utf16le('a😀\r\n😀\r'), {}, Buffer.from('a😀\n😀\r')],
  ['UTF-16BE surrogate pairs', utf16be('😀x\r\r\n'), {}, Buffer.from('😀x\r\n')],
  ['no BOM, latin-1 bytes', Buffer.from([0x65, 0xe9, 0x0d, 0x0a]), {}, Buffer.from([0x65, 0xe9, 0x0a])],
  ['added UTF-8 BOM', Buffer.from('Write-Host ü\r\n'), { utf8Bom: true }, Buffer.from('\uFEFFWrite-Host ü\n')],
  ['kept UTF-8 BOM', Buffer.from('\uFEFFa\r\n'), { utf8Bom: true }, Buffer.from('\uFEFFa\n')],
  ['CR CR LF and trailing CR', Buffer.from('a\r\r\nb\r'), {}, Buffer.from('a\r\nb\r')],
  ['shorter than a BOM', Buffer.from('\r\n'), {}, Buffer.from('\n')],
  ['one byte', Buffer.from('\r'), {}, Buffer.from('\r')],
  ['empty', Buffer.alloc(0), {}, Buffer.alloc(0)],
  ['odd UTF-16 length', Buffer.concat([utf16le('a'), Buffer.from([0x62])]), {}, Buffer.from('a\uFFFD')],
];

async function normaliseInPieces(input: Buffer, options: { utf8Bom?: boolean }, size: number): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for (let at = 0; at < input.length; at += size) pieces.push(input.subarray(at, at + size));
  const out: Buffer[] = [];
  await pipeline(Readable.from(pieces), makeTextScriptTransform(options), new Writable({ write(chunk: Buffer, _e, done) { out.push(chunk); done(); } }));
  return Buffer.concat(out);
}

describe('streaming normalisation', () => {
  it('gives byte-exact results whatever the chunking: 1-byte, 2-byte, 3-byte and 5-byte chunks', async () => {
    for (const [label, input, options, expected] of normalisationCases) {
      expect(normalizeTextScript(input, options), label).toEqual(expected);
      for (const size of [1, 2, 3, 5]) expect(await normaliseInPieces(input, options, size), `${label} in ${size}-byte chunks`).toEqual(expected);
    }
  });

  it('normalises a 64 MiB download without the daemon holding it in memory', async () => {
    const line = Buffer.from(`${'echo streaming normalisation'.padEnd(62, '.')}\r\n`); // 64 bytes
    const block = Buffer.concat(Array.from({ length: 1024 }, () => line)); // 64 KiB
    const blocks = 1024; // 64 MiB
    for (const name of ['/warm-up.bin', '/big.sh']) {
      server.route(name, (_req, res) => {
        res.writeHead(200, { 'content-length': String(block.length * blocks) });
        Readable.from((function* () { for (let index = 0; index < blocks; index += 1) yield block; })()).pipe(res);
      });
    }
    // A binary download of the same size first (not normalised): the allocator and the garbage
    // collector reach their steady state, so what follows measures what normalising adds.
    await downloadScript({ uri: `${server.origin}/warm-up.bin` }, dir(), new TakenNames(), { bounds: { totalMs: 120_000, attempts: 1 } });
    await rm(join(dir(), 'warm-up.bin'));
    const before = process.memoryUsage.rss();
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 10);
    try {
      const path = await downloadScript({ uri: `${server.origin}/big.sh` }, dir(), new TakenNames(), { bounds: { totalMs: 120_000, attempts: 1 } });
      expect((await stat(path)).size).toBe((line.length - 1) * 1024 * blocks);
      const file = await open(path);
      const head = Buffer.alloc(126);
      await file.read(head, 0, 126, 0);
      await file.close();
      expect(head.toString()).toBe(`${line.toString().replace('\r', '')}${line.toString().replace('\r', '')}`);
    } finally {
      clearInterval(sampler);
    }
    peak = Math.max(peak, process.memoryUsage.rss());
    // The old code held the file (64 MiB) and its normalised copy (64 MiB) at once: +128 MiB.
    expect(peak - before).toBeLessThan(40 * 1024 * 1024);
    expect(await readdir(dir())).toEqual(['big.sh']);
  });
});

describe('downloadScript', () => {
  it('names the file after the last path segment and normalises a text script', async () => {
    server.route('/c/my%20setup.sh', serve(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('echo ok\r\n')])));
    const path = await downloadScript({ uri: `${server.origin}/c/my%20setup.sh?x=1` }, dir(), new TakenNames(), deps);
    expect(path).toBe(join(dir(), 'my setup.sh'));
    expect(await readFile(path, 'utf8')).toBe('echo ok\n');
  });

  it('keeps a binary file byte for byte', async () => {
    const bytes = Buffer.from([0xff, 0xfe, 0x0d, 0x0a, 0x00]);
    server.route('/tool', serve(bytes));
    const path = await downloadScript({ uri: `${server.origin}/tool` }, dir(), new TakenNames(), deps);
    expect(await readFile(path)).toEqual(bytes);
  });

  it('keeps (or adds) a UTF-8 BOM on a .ps1 when asked (Windows PowerShell)', async () => {
    server.route('/s.ps1', serve(utf16le('Write-Host "ü"\r\n')));
    const path = await downloadScript({ uri: `${server.origin}/s.ps1` }, dir(), new TakenNames(), { ...deps, ps1Bom: true });
    expect(await readFile(path, 'utf8')).toBe('\uFEFFWrite-Host "ü"\n');
  });

  it('fails with −100 naming host and path, never the SAS', async () => {
    const error = await errorOf(downloadScript({ uri: `${server.origin}/c/missing.sh`, sasToken: 'sv=1&sig=TOPSECRET' }, dir(), new TakenNames(), deps));
    expect(error.code).toBe(errorCodes.scriptDownload);
    expect(error.message).toBe(
      `Failed to download the script: could not download ${server.origin}/c/missing.sh: with the SAS token: HTTP 404 Not Found; anonymously: HTTP 404 Not Found`,
    );
    expect(error.message).not.toContain('TOPSECRET');
  });

  it('refuses a script over the size bound with −100', async () => {
    server.route('/big.sh', serve(Buffer.alloc(5000, 'a')));
    const error = await errorOf(downloadScript({ uri: `${server.origin}/big.sh` }, dir(), new TakenNames(), { ...deps, bounds: { ...deps.bounds, maxBytes: 4096 } }));
    expect(error.code).toBe(errorCodes.scriptDownload);
    expect(error.message).toMatch(/larger than the bound of 4096 bytes$/);
  });

  it('makes hostile names safe and never takes a handler file name', async () => {
    server.route('/', serve('x')); // WHATWG URL parsing removes the encoded dot segment
    expect(await downloadScript({ uri: `${server.origin}/%2E%2E` }, dir(), new TakenNames(), deps)).toBe(join(dir(), 'script'));
    server.route('/a%2Fb%5C..sh', serve('x'));
    expect(await downloadScript({ uri: `${server.origin}/a%2Fb%5C..sh` }, dir(), new TakenNames(), deps)).toBe(join(dir(), 'a_b_..sh'));
    const error = await errorOf(downloadScript({ uri: `${server.origin}/stdout` }, dir(), new TakenNames(), deps));
    expect(error.message).toBe("source.scriptUri: the file name 'stdout' is reserved by the handler");
  });
});

describe('downloadArtifacts', () => {
  it('downloads each artifact next to the script, named fileName or Artifact<id> (not the URL segment)', async () => {
    server.route('/a/data.txt', serve('line\r\n'));
    server.route('/a/tool.bin', serve(Buffer.from([1, 2, 3, 0x0d, 0x0a])));
    const taken = new TakenNames();
    taken.claim('script.sh', 'source.script', errorCodes.saveScript);
    const paths = await downloadArtifacts(
      [
        { id: '1', uri: `${server.origin}/a/data.txt`, sasToken: 'sig=abc' },
        { id: '2', uri: `${server.origin}/a/tool.bin`, fileName: 'renamed.bin' },
      ],
      dir(),
      taken,
      deps,
    );
    // Compat (run-command.md §3): without fileName the file is Artifact<id>; no text extension, no #!: byte for byte.
    expect(paths).toEqual([join(dir(), 'Artifact1'), join(dir(), 'renamed.bin')]);
    expect(await readFile(paths[0] ?? '', 'utf8')).toBe('line\r\n');
    expect(await readFile(paths[1] ?? '')).toEqual(Buffer.from([1, 2, 3, 0x0d, 0x0a]));
    expect(server.seen[0]?.query).toBe('?sig=abc');
    expect((await stat(paths[1] ?? '')).mode & 0o777).toBe(0o700);
  });

  it('gives text artifacts (.sh .py .pl .txt or a #! line) the text-script treatment: BOM removed, UTF-16 transcoded, CRLF → LF', async () => {
    server.route('/t/notes', serve('\uFEFFa\r\nb\r\n'));
    server.route('/t/helper', serve(utf16le('#!/bin/sh\r\necho ü\r\n')));
    server.route('/t/data', serve('\uFEFFkeep\r\n'));
    const paths = await downloadArtifacts(
      [
        { id: 'n', uri: `${server.origin}/t/notes`, fileName: 'notes.TXT' },
        { id: 'h', uri: `${server.origin}/t/helper` },
        { id: 'd', uri: `${server.origin}/t/data`, fileName: 'data.json' },
      ],
      dir(),
      new TakenNames(),
      deps,
    );
    expect(paths).toEqual([join(dir(), 'notes.TXT'), join(dir(), 'Artifacth'), join(dir(), 'data.json')]);
    expect(await readFile(paths[0] ?? '', 'utf8')).toBe('a\nb\n');
    expect(await readFile(paths[1] ?? '', 'utf8')).toBe('#!/bin/sh\necho ü\n');
    expect(await readFile(paths[2] ?? '', 'utf8')).toBe('\uFEFFkeep\r\n');
  });

  it('fails with −215 naming the artifact when one cannot be downloaded', async () => {
    const error = await errorOf(downloadArtifacts([{ id: 'cfg', uri: `${server.origin}/nope.json` }], dir(), new TakenNames(), deps));
    expect(error.code).toBe(errorCodes.artifactDownload);
    expect(error.message).toBe(`Failed to download artifacts[0] (id cfg): could not download ${server.origin}/nope.json: anonymously: HTTP 404 Not Found`);
    expect(await readdir(dir())).toEqual([]);
  });

  it('refuses two files with the same name (ignoring case) with −215', async () => {
    server.route('/x.sh', serve('x'));
    const taken = new TakenNames();
    taken.claim('script.sh', 'source.script', errorCodes.saveScript);
    const error = await errorOf(downloadArtifacts([{ id: 'a', uri: `${server.origin}/x.sh`, fileName: 'SCRIPT.sh' }], dir(), taken, deps));
    expect(error.code).toBe(errorCodes.artifactDownload);
    expect(error.message).toBe("artifacts[0] (id a): the file name 'SCRIPT.sh' is already used by source.script");
  });
});
