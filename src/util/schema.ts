// The validator of the handler's own files and inputs (journals, records, HandlerEnvironment.json,
// options, the wrapper's records) and of run command settings (settings-schema.ts): zod's
// tree-shakable `zod/mini` build, so that `enable`, which reads several of them on every goal
// state, loads a few dozen KB of it instead of the ≈ 360 KB of the classic API, and the daemon
// holds no classic schema objects (each carries its own copy of every method). Same core, same
// issues; messages in English, as the classic API sets them up. Import it as a namespace
// (`import * as z`) and use its members: the bundler then keeps only those.
import { config } from 'zod/mini';
import en from 'zod/v4/locales/en.js';

config(en());

export * from 'zod/mini';
