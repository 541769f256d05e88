// The validator of the handler's own files and inputs (journals, records, HandlerEnvironment.json,
// options, the wrapper's records): zod's tree-shakable `zod/mini` build, so that `enable`, which
// reads several of them on every goal state, loads ≈ 30 KB of it instead of the ≈ 360 KB of the
// classic API (the daemon still uses the classic API for run command settings: settings-schema.ts).
// Same core, same issues; messages in English, as the classic API sets them up.
import * as z from 'zod/mini';
import en from 'zod/v4/locales/en.js';

z.config(en());

export { z };
