// Every secret value of a run command, for the redaction layer: protected parameter values, the
// RunAs password, SAS tokens and the SAS query string of any URL that carries a signature.

import type { RunCommand } from './run-command.js';
import type { ProtectedSettings } from './settings-schema.js';

// Collects the secrets of `command` (built from `prot`), deduplicated and non-empty.
export function collectSecrets(command: Omit<RunCommand, 'secrets'>, prot: ProtectedSettings): string[] {
  const secrets = new Set<string>();
  const add = (values: readonly (string | undefined)[]): void => {
    for (const value of values) if (value !== undefined && value !== '') secrets.add(value);
  };
  const protectedParameters = command.parameters.slice(command.parameters.length - command.protectedParameterCount);
  add(protectedParameters.map((parameter) => parameter.value));
  add([prot.runAsPassword]);
  const tokens = [prot.sourceSASToken, prot.outputBlobSASToken, prot.errorBlobSASToken, ...(prot.artifacts ?? []).map((a) => a.sasToken)];
  for (const token of tokens) if (token !== undefined) add(toSasSecrets(token));
  const source = command.source.kind === 'scriptUri' ? command.source.scriptUri : undefined;
  const urls = [source, command.outputBlob?.uri, command.errorBlob?.uri, ...command.artifacts.map((a) => a.uri)];
  for (const url of urls) if (url !== undefined) add(toUrlSecrets(url));
  return [...secrets];
}

// A SAS token as given, without its leading '?', and its signature raw and decoded.
function toSasSecrets(token: string): string[] {
  const query = token.startsWith('?') ? token.slice(1) : token;
  return [token, query, ...toSignatures(query)];
}

// The query string of a URL whose query has a `sig` parameter, and that signature.
function toUrlSecrets(url: string): string[] {
  const start = url.indexOf('?');
  if (start < 0) return [];
  const hash = url.indexOf('#', start);
  const query = url.slice(start + 1, hash < 0 ? undefined : hash);
  const signatures = toSignatures(query);
  return signatures.length === 0 ? [] : [query, ...signatures];
}

function toSignatures(query: string): string[] {
  const signatures: string[] = [];
  for (const pair of query.split('&')) {
    const equals = pair.indexOf('=');
    if (equals < 0 || pair.slice(0, equals).toLowerCase() !== 'sig') continue;
    const raw = pair.slice(equals + 1);
    signatures.push(raw, safeDecode(raw));
  }
  return signatures;
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}
