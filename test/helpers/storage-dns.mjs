// Preloaded into the packaged handler's node (NODE_OPTIONS=--import) by tests that serve blob
// storage on loopback: names under a real storage suffix resolve to 127.0.0.1, so the handler's
// production rule (a token only over https to *.blob.core.windows.net…) is exercised unchanged.
import dns from 'node:dns';

const loopbackSuffix = '.blob.core.windows.net';
const lookup = dns.lookup;

dns.lookup = function storageLookup(hostname, options, callback) {
  if (typeof hostname !== 'string' || !hostname.toLowerCase().endsWith(loopbackSuffix)) return lookup.call(dns, hostname, options, callback);
  const done = typeof options === 'function' ? options : callback;
  const all = typeof options === 'object' && options !== null && options.all === true;
  process.nextTick(() => (all ? done(null, [{ address: '127.0.0.1', family: 4 }]) : done(null, '127.0.0.1', 4)));
  return {};
};
