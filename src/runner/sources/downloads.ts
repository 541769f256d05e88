// A run's downloads (run-command.md §3): the scriptUri script (exit code −100), named after the
// last segment of its URL, and the artifacts next to it (−215), named `fileName` or
// `Artifact<id>` (Compat); names made safe, never replacing a handler file or another download.
// Text files (scripts and artifacts) get the BOM/CRLF treatment of text-script.ts, as a stream.
import { open } from 'node:fs/promises';
import type { Artifact } from '../../config/run-command.js';
import { errorCodes, HandlerError, toErrorMessage, type ErrorCode } from '../../errors.js';
import { downloadLimits } from '../download-limits.js';
import { isReservedFileName } from '../run-directory.js';
import { toContainedPath, toFileNameFromUrl, toSafeFileName } from '../safe-path.js';
import { defaultDownloadBounds, type DownloadBounds } from './http-download.js';
import { downloadRemoteFile, type RemoteFile, type RemoteFileDeps } from './remote-file.js';
import { isTextScript, normalizeTextScriptFile } from './text-script.js';

// Download settings shared by the script and its artifacts.
export type DownloadDeps = Omit<RemoteFileDeps, 'bounds'> & {
  // Tests shorten these; maxBytes comes from download-limits.ts unless given.
  readonly bounds?: Partial<DownloadBounds>;
  // Windows: .ps1 scripts keep a UTF-8 BOM so that Windows PowerShell reads them as UTF-8.
  readonly ps1Bom?: boolean;
};

// What one run has downloaded so far: the names used in its directory (compared ignoring case,
// as Windows does) and the bytes it may still download.
export class TakenNames {
  readonly #names = new Map<string, string>();
  remainingBytes: number = downloadLimits.runBytes;

  // Claims `name` for `owner`; throws `code` when it is reserved or already claimed.
  claim(name: string, owner: string, code: ErrorCode): void {
    const key = name.toLowerCase();
    if (isReservedFileName(name)) throw new HandlerError(code, `${owner}: the file name '${name}' is reserved by the handler`, { blame: 'user' });
    const other = this.#names.get(key);
    if (other !== undefined) throw new HandlerError(code, `${owner}: the file name '${name}' is already used by ${other}`, { blame: 'user' });
    this.#names.set(key, owner);
  }
}

function toBounds(deps: DownloadDeps, maxBytes: number): DownloadBounds {
  return { ...defaultDownloadBounds, maxBytes, ...deps.bounds };
}

async function fetchInto(file: RemoteFile, path: string, deps: DownloadDeps, maxBytes: number, code: ErrorCode, what: string): Promise<number> {
  try {
    return await downloadRemoteFile(file, path, { ...deps, bounds: toBounds(deps, maxBytes) });
  } catch (error) {
    throw new HandlerError(code, `${what}: ${toErrorMessage(error)}`, { blame: 'user', cause: error });
  }
}

// The first `length` bytes of a file (fewer if it is shorter).
async function readHead(path: string, length: number): Promise<Buffer> {
  const file = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(length);
    const { bytesRead } = await file.read(buffer, 0, length, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await file.close();
  }
}

// Downloads the scriptUri script into `dir`, normalising a text script; returns its path.
export async function downloadScript(file: RemoteFile, dir: string, taken: TakenNames, deps: DownloadDeps): Promise<string> {
  const name = toFileNameFromUrl(file.uri, 'script');
  taken.claim(name, 'source.scriptUri', errorCodes.scriptDownload);
  const path = toContainedPath(dir, name);
  const maxBytes = Math.min(downloadLimits.scriptBytes, taken.remainingBytes);
  taken.remainingBytes -= await fetchInto(file, path, deps, maxBytes, errorCodes.scriptDownload, 'Failed to download the script');
  await normalizeIfText(path, name, deps);
  return path;
}

// Rewrites a downloaded text file (by name, or a `#!` first line) as Azure's handlers do: BOM
// removed (UTF-16 transcoded), CRLF → LF; any other file stays byte for byte.
async function normalizeIfText(path: string, name: string, deps: DownloadDeps): Promise<void> {
  if (!isTextScript(name, await readHead(path, 8))) return;
  const utf8Bom = deps.ps1Bom === true && name.toLowerCase().endsWith('.ps1');
  await normalizeTextScriptFile(path, { utf8Bom });
}

// The file name of an artifact (run-command.md §3, Compat): its fileName, else `Artifact<id>`.
export function toArtifactFileName(artifact: Artifact, index: number): string {
  return toSafeFileName(artifact.fileName ?? `Artifact${artifact.id}`, `artifact-${index}`);
}

// Downloads every artifact into `dir` (text artifacts normalised like text scripts, Compat);
// returns their paths in order.
export async function downloadArtifacts(artifacts: readonly Artifact[], dir: string, taken: TakenNames, deps: DownloadDeps): Promise<string[]> {
  const paths: string[] = [];
  for (const [index, artifact] of artifacts.entries()) {
    const owner = `artifacts[${index}] (id ${artifact.id})`;
    const name = toArtifactFileName(artifact, index);
    taken.claim(name, owner, errorCodes.artifactDownload);
    const path = toContainedPath(dir, name);
    const maxBytes = Math.max(0, Math.min(downloadLimits.artifactBytes, taken.remainingBytes));
    taken.remainingBytes -= await fetchInto(artifact, path, deps, maxBytes, errorCodes.artifactDownload, `Failed to download ${owner}`);
    try {
      await normalizeIfText(path, name, deps);
    } catch (error) {
      throw new HandlerError(errorCodes.artifactDownload, `Failed to save ${owner}: ${toErrorMessage(error)}`, { cause: error });
    }
    paths.push(path);
  }
  return paths;
}
