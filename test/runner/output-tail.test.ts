import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readOutputTail, tailBytes, toUtf8Tail } from '../../src/runner/output-tail.js';
import { useTempDir } from '../helpers/temp-dir.js';

const tempDir = useTempDir('output-tail');

async function writeOutput(content: string | Buffer): Promise<string> {
  const path = join(tempDir(), 'stdout');
  await writeFile(path, content);
  return path;
}

describe('readOutputTail', () => {
  it('keeps tails of 4096 bytes', () => {
    expect(tailBytes).toBe(4096);
  });

  it('returns an empty text and size 0 when the file does not exist', async () => {
    expect(await readOutputTail(join(tempDir(), 'missing'))).toEqual({ text: '', size: 0 });
  });

  it('returns an empty text for an empty file', async () => {
    expect(await readOutputTail(await writeOutput(''))).toEqual({ text: '', size: 0 });
  });

  it('returns the whole text of a file shorter than the limit, multi-byte characters included', async () => {
    const content = 'héllo €uro 😀\nline two\n';
    expect(await readOutputTail(await writeOutput(content))).toEqual({ text: content, size: Buffer.byteLength(content) });
  });

  it('returns the whole text of a file of exactly 4096 bytes', async () => {
    const content = `€${'a'.repeat(4093)}`;
    expect(Buffer.byteLength(content)).toBe(4096);
    expect(await readOutputTail(await writeOutput(content))).toEqual({ text: content, size: 4096 });
  });

  it('returns the last 4096 bytes of a longer ASCII file and the full size', async () => {
    const content = `${'x'.repeat(10_000)}${'y'.repeat(4000)}END\n`;
    const result = await readOutputTail(await writeOutput(content));
    expect(result.size).toBe(14_004);
    expect(result.text).toBe(`${'x'.repeat(92)}${'y'.repeat(4000)}END\n`);
  });

  const characters = [
    { label: '2-byte', char: 'é' },
    { label: '3-byte', char: '€' },
    { label: '4-byte', char: '😀' },
  ];
  for (const { label, char } of characters) {
    const length = Buffer.byteLength(char);
    for (let inside = 1; inside < length; inside += 1) {
      it(`drops a ${label} character cut ${inside} byte(s) into it at the 4096-byte boundary`, async () => {
        // The char's first `inside` bytes fall before the cut; its remaining bytes start the tail.
        const rest = 'a'.repeat(tailBytes - (length - inside));
        const content = `z${char}${rest}`;
        expect(Buffer.byteLength(content)).toBe(1 + length + rest.length);
        const result = await readOutputTail(await writeOutput(content));
        expect(result.size).toBe(tailBytes + 1 + inside);
        expect(result.text).toBe(rest);
      });
    }

    it(`keeps a ${label} character that starts exactly at the 4096-byte boundary`, async () => {
      const rest = 'b'.repeat(tailBytes - length);
      const content = `zz${char}${rest}`;
      const result = await readOutputTail(await writeOutput(content));
      expect(result.text).toBe(`${char}${rest}`);
      expect(Buffer.byteLength(result.text)).toBe(tailBytes);
    });
  }

  it('cuts on a character boundary in a file made only of 3-byte characters', async () => {
    // 2000 × 3 bytes = 6000 bytes; the last 4096 start 1 byte into a character (6000 − 4096 = 1904 = 634·3 + 2).
    const result = await readOutputTail(await writeOutput('€'.repeat(2000)));
    expect(result.size).toBe(6000);
    expect(result.text).toBe('€'.repeat(1365));
  });

  it('decodes binary bytes with replacement characters and still returns only the tail', async () => {
    const bytes = Buffer.alloc(5120);
    for (let index = 0; index < bytes.length; index += 1) bytes[index] = index % 256;
    const result = await readOutputTail(await writeOutput(bytes));
    expect(result.size).toBe(5120);
    // The tail starts at byte 1024 (value 0x00, a character start), so nothing is skipped.
    expect(result.text).toBe(bytes.subarray(1024).toString('utf8'));
    expect(result.text.startsWith('\u0000\u0001\u0002')).toBe(true);
    // Bytes 0x80–0xFF never form a valid sequence when ascending: one U+FFFD each.
    expect(result.text.endsWith(`}~\u007f${'\uFFFD'.repeat(128)}`)).toBe(true);
    // 16 blocks of 256 bytes: 128 ASCII characters and 128 replacement characters each.
    expect(result.text.length).toBe(16 * 256);
  });

  it('decodes a short binary file whole, invalid bytes as U+FFFD', async () => {
    const result = await readOutputTail(await writeOutput(Buffer.from([0xff, 0xfe, 0x00, 0x41, 0x80])));
    expect(result).toEqual({ text: '\uFFFD\uFFFD\u0000A\uFFFD', size: 5 });
  });

  it('honours a smaller limit', async () => {
    const result = await readOutputTail(await writeOutput('0123456789abcdef'), 6);
    expect(result).toEqual({ text: 'abcdef', size: 16 });
  });
});

describe('toUtf8Tail', () => {
  it('returns the last `limit` bytes, skipping continuation bytes at the start', () => {
    const buffer = Buffer.from('€abc'); // e2 82 ac 61 62 63
    expect(toUtf8Tail(buffer, 6)).toBe('€abc');
    expect(toUtf8Tail(buffer, 5)).toBe('abc');
    expect(toUtf8Tail(buffer, 4)).toBe('abc');
    expect(toUtf8Tail(buffer, 3)).toBe('abc');
    expect(toUtf8Tail(buffer, 2)).toBe('bc');
  });

  it('skips leading continuation bytes of an already-cut buffer only when told it was cut', () => {
    const buffer = Buffer.from([0x82, 0xac, 0x61]);
    expect(toUtf8Tail(buffer, 4096, true)).toBe('a');
    expect(toUtf8Tail(buffer, 4096, false)).toBe('\uFFFD\uFFFDa');
  });

  it('skips the three continuation bytes of a 4-byte character cut after its lead byte', () => {
    const buffer = Buffer.from('😀xy').subarray(1); // 9f 98 80 78 79
    expect(toUtf8Tail(buffer, 4096, true)).toBe('xy');
  });
});
