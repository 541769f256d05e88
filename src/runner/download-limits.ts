// Size bounds of what one run may download (run-command.md §3 "A size bound"; targets.md: a
// download larger than the bound is refused). The settings' own bounds are settingsLimits.

const MiB = 1024 * 1024;

// Bytes a download may have: a script from scriptUri (installers are often self-extracting
// scripts, hence generous), one artifact, and everything one run downloads together.
export const downloadLimits = Object.freeze({
  scriptBytes: 256 * MiB,
  artifactBytes: 1024 * MiB,
  runBytes: 2048 * MiB,
});
