// Text scripts as Azure's handlers prepare them (run-command.md §3, Compat): a UTF-8 or UTF-16
// byte order mark is removed (UTF-16 transcoded to UTF-8) and CRLF line ends become LF.
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { extname } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { TextDecoder } from 'node:util';

const textExtensions = new Set(['.sh', '.py', '.pl', '.txt', '.ps1']);
const utf8Bom = Buffer.from([0xef, 0xbb, 0xbf]);

export interface NormalizeOptions {
  // Write a UTF-8 BOM back (Windows PowerShell 5.1 reads a BOM-less script as ANSI).
  readonly utf8Bom?: boolean;
}

type Encoding = 'utf-8' | 'utf-16le' | 'utf-16be' | 'none';

function toEncoding(bytes: Uint8Array): { encoding: Encoding; bomLength: number } {
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) return { encoding: 'utf-8', bomLength: 3 };
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return { encoding: 'utf-16le', bomLength: 2 };
  if (bytes[0] === 0xfe && bytes[1] === 0xff) return { encoding: 'utf-16be', bomLength: 2 };
  return { encoding: 'none', bomLength: 0 };
}

// The content as UTF-8 bytes without a BOM (bytes without a BOM are kept as they are: they may
// be in any ASCII-compatible encoding, which CRLF → LF leaves intact).
function toUtf8WithoutBom(bytes: Buffer): Buffer {
  const { encoding, bomLength } = toEncoding(bytes);
  if (encoding === 'utf-16le' || encoding === 'utf-16be') {
    return Buffer.from(new TextDecoder(encoding).decode(bytes.subarray(bomLength)), 'utf8');
  }
  return bytes.subarray(bomLength);
}

// True for a file Azure treats as a text script: by extension, or a `#!` first line (`head`: the
// file's first bytes; 8 are enough).
export function isTextScript(fileName: string, head: Buffer): boolean {
  if (textExtensions.has(extname(fileName).toLowerCase())) return true;
  return toUtf8WithoutBom(head.subarray(0, 8)).subarray(0, 2).toString('latin1') === '#!';
}

// The normalisation as a state machine over chunks, so that a script of any size streams through
// in constant memory: the BOM is looked for in the first three bytes, UTF-16 is decoded in stream
// mode (a surrogate pair or a code unit split across chunks is completed by the next one), and a CR
// at the end of a chunk waits for the next chunk's first byte.
export class TextScriptNormalizer {
  readonly #options: NormalizeOptions;
  #head: Buffer | undefined = Buffer.alloc(0);
  #decoder: TextDecoder | undefined;
  #pendingCr = false;

  constructor(options: NormalizeOptions = {}) {
    this.#options = options;
  }

  // The output for the next chunk of input (possibly nothing yet).
  push(chunk: Buffer): Buffer[] {
    if (this.#head !== undefined) {
      const head = Buffer.concat([this.#head, chunk]);
      if (head.length < 3) {
        this.#head = head;
        return [];
      }
      return this.#start(head);
    }
    return this.#convert(chunk);
  }

  // The output still held back, at the end of the input.
  end(): Buffer[] {
    const out = this.#head !== undefined ? this.#start(this.#head) : [];
    if (this.#decoder) out.push(...this.#lineEnds(Buffer.from(this.#decoder.decode(), 'utf8')));
    if (this.#pendingCr) out.push(Buffer.from([0x0d]));
    this.#pendingCr = false;
    return out.filter((part) => part.length > 0);
  }

  #start(head: Buffer): Buffer[] {
    this.#head = undefined;
    const { encoding, bomLength } = toEncoding(head);
    if (encoding === 'utf-16le' || encoding === 'utf-16be') this.#decoder = new TextDecoder(encoding);
    const out: Buffer[] = this.#options.utf8Bom ? [utf8Bom] : [];
    out.push(...this.#convert(head.subarray(bomLength)));
    return out;
  }

  #convert(chunk: Buffer): Buffer[] {
    if (this.#decoder) return this.#lineEnds(Buffer.from(this.#decoder.decode(chunk, { stream: true }), 'utf8'));
    return this.#lineEnds(chunk);
  }

  // Drops every CR that is followed by LF, across chunk boundaries too.
  #lineEnds(body: Buffer): Buffer[] {
    if (body.length === 0) return [];
    const parts: Buffer[] = [];
    if (this.#pendingCr) {
      this.#pendingCr = false;
      if (body[0] !== 0x0a) parts.push(Buffer.from([0x0d]));
    }
    let start = 0;
    for (let index = body.indexOf(0x0d); index >= 0; index = body.indexOf(0x0d, index + 1)) {
      if (index === body.length - 1) {
        parts.push(body.subarray(start, index));
        this.#pendingCr = true;
        return parts.filter((part) => part.length > 0);
      }
      if (body[index + 1] !== 0x0a) continue;
      parts.push(body.subarray(start, index));
      start = index + 1;
    }
    parts.push(body.subarray(start));
    return parts.filter((part) => part.length > 0);
  }
}

// A Transform that normalises a text script as it streams (TextScriptNormalizer).
export function makeTextScriptTransform(options: NormalizeOptions = {}): Transform {
  const normalizer = new TextScriptNormalizer(options);
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      for (const part of normalizer.push(chunk)) this.push(part);
      callback();
    },
    flush(callback) {
      for (const part of normalizer.end()) this.push(part);
      callback();
    },
  });
}

// Removes a BOM (transcoding UTF-16 to UTF-8) and turns CRLF into LF (whole content at once).
export function normalizeTextScript(bytes: Buffer, options: NormalizeOptions = {}): Buffer {
  const normalizer = new TextScriptNormalizer(options);
  return Buffer.concat([...normalizer.push(bytes), ...normalizer.end()]);
}

// Normalises the text script at `path` in place, streaming through a temporary file next to it
// (same owner-only mode), so memory does not grow with the script's size.
export async function normalizeTextScriptFile(path: string, options: NormalizeOptions = {}): Promise<void> {
  const temporary = `${path}.normalizing`;
  try {
    await pipeline(createReadStream(path), makeTextScriptTransform(options), createWriteStream(temporary, { mode: 0o700 }));
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}
