// Where a managed-identity token may be sent (run-command.md §3, §6): only over https, and only to
// a blob storage endpoint of a known Azure cloud, matched as an exact host-name suffix (so
// `acct.blob.core.windows.net.attacker.example` or `acct.blob.core.attacker.example` get nothing).
// Tests that serve storage on loopback inject their own predicate; there is no runtime bypass.

// The blob endpoint suffixes of the Azure clouds (public, US Government, China) and the DNS zone
// of Azure Storage's newer endpoints (`<acct>.<zone>.blob.storage.azure.net`).
export const storageHostSuffixes = ['.blob.core.windows.net', '.blob.core.usgovcloudapi.net', '.blob.core.chinacloudapi.cn', '.blob.storage.azure.net'] as const;

// True when `hostname` is a blob storage host: a non-empty label, then one of the suffixes.
export function isAzureStorageHost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/\.$/, '');
  return storageHostSuffixes.some((suffix) => host.length > suffix.length && host.endsWith(suffix) && /^[a-z0-9-]+(\.[a-z0-9-]+)*$/.test(host.slice(0, -suffix.length)));
}

// True when a bearer token for storage may be sent to `url`: https, and a storage host.
export function mayReceiveStorageToken(url: URL): boolean {
  return url.protocol === 'https:' && url.username === '' && url.password === '' && isAzureStorageHost(url.hostname);
}
