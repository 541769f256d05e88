// Where a managed-identity token may be sent (docs/spec/run-command.md §3): only over https, and only
// to a blob storage endpoint of a known Azure cloud, matched as an exact host-name suffix (so
// `acct.blob.core.windows.net.attacker.example` or `acct.blob.core.attacker.example` get nothing),
// or to an Azure Stack Hub blob endpoint as Microsoft's handler recognises one.
// Tests that serve storage on loopback inject their own predicate; there is no runtime bypass.

// The blob endpoint suffixes of the Azure clouds (public, US Government, China) and the DNS zone
// of Azure Storage's newer endpoints (`<acct>.<zone>.blob.storage.azure.net`).
export const storageHostSuffixes = ['.blob.core.windows.net', '.blob.core.usgovcloudapi.net', '.blob.core.chinacloudapi.cn', '.blob.storage.azure.net'] as const;

// Azure Stack Hub's domain is the operator's own (`<acct>.blob.azurestack.<operator's domain>`),
// so no fixed suffix exists. Microsoft's handler (pkg/download/blobwithmsitoken.go, 1.3.28) sends
// the token to any host containing `.blob.azurestack.`; this is the same rule on whole labels:
// at least one label before `blob.azurestack` and at least one after it.
export const stackHubBlobLabels = '.blob.azurestack.';

// How the hosts are named to a user (the refusal messages), without any `://`.
export const storageHostPatterns: readonly string[] = [...storageHostSuffixes.map((suffix) => `*${suffix}`), `*${stackHubBlobLabels}*`];

const labels = /^[a-z0-9-]+(\.[a-z0-9-]+)*$/;

// True when `hostname` is a blob storage host: a non-empty label, then one of the suffixes; or a
// Stack Hub blob host.
export function isAzureStorageHost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/\.$/, '');
  if (!labels.test(host)) return false;
  return storageHostSuffixes.some((suffix) => host.length > suffix.length && host.endsWith(suffix)) || isStackHubBlobHost(host);
}

// `host` (lower case, valid labels) has `blob.azurestack` as two whole labels, neither first nor last.
function isStackHubBlobHost(host: string): boolean {
  const at = host.indexOf(stackHubBlobLabels);
  return at > 0 && at + stackHubBlobLabels.length < host.length;
}

// True when a bearer token for storage may be sent to `url`: https, and a storage host.
export function mayReceiveStorageToken(url: URL): boolean {
  return url.protocol === 'https:' && url.username === '' && url.password === '' && isAzureStorageHost(url.hostname);
}
