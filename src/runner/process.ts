// The platform's process layer, chosen in one place (conventions: platform files).
export * from './process.linux.js';
