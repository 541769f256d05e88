// Preloaded into the packaged handler's node (NODE_OPTIONS=--import) by tests that serve blob
// storage on loopback: names under a real storage suffix (Azure's, or an Azure Stack Hub domain's)
// resolve to 127.0.0.1, so the handler's production rule (a token only over https to
// *.blob.core.windows.net, *.blob.azurestack.*…) is exercised unchanged.
import dns from 'node:dns';

const loopbackSuffixes = ['.blob.core.windows.net', '.blob.azurestack.external'];
const lookup = dns.lookup;

dns.lookup = function storageLookup(hostname, options, callback) {
  if (typeof hostname !== 'string' || !loopbackSuffixes.some((suffix) => hostname.toLowerCase().endsWith(suffix))) return lookup.call(dns, hostname, options, callback);
  const done = typeof options === 'function' ? options : callback;
  const all = typeof options === 'object' && options !== null && options.all === true;
  process.nextTick(() => (all ? done(null, [{ address: '127.0.0.1', family: 4 }]) : done(null, '127.0.0.1', 4)));
  return {};
};
