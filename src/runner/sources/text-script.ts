// Text scripts as Azure's handlers prepare them (run-command.md §3, Compat): a UTF-8 or UTF-16
// byte order mark is removed (UTF-16 transcoded to UTF-8) and CRLF line ends become LF.
import { extname } from 'node:path';

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

// True for a file Azure treats as a text script: by extension, or a `#!` first line.
export function isTextScript(fileName: string, bytes: Buffer): boolean {
  if (textExtensions.has(extname(fileName).toLowerCase())) return true;
  return toUtf8WithoutBom(bytes.subarray(0, 8)).subarray(0, 2).toString('latin1') === '#!';
}

// Removes a BOM (transcoding UTF-16 to UTF-8) and turns CRLF into LF.
export function normalizeTextScript(bytes: Buffer, options: NormalizeOptions = {}): Buffer {
  const body = toUtf8WithoutBom(bytes);
  const parts: Buffer[] = options.utf8Bom ? [utf8Bom] : [];
  let start = 0;
  for (let index = body.indexOf(0x0d); index >= 0; index = body.indexOf(0x0d, index + 1)) {
    if (body[index + 1] !== 0x0a) continue;
    parts.push(body.subarray(start, index));
    start = index + 1;
  }
  parts.push(body.subarray(start));
  return Buffer.concat(parts);
}
