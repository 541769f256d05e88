// The one place the platform is chosen: from the host, once, at start.
import { linuxPlatform } from './linux.js';
import type { Platform } from './platform.js';
import { windowsPlatform } from './windows.js';

// The platform of this host (`process.platform`), or of another for tests.
export function selectPlatform(host: NodeJS.Platform = process.platform): Platform {
  return host === 'win32' ? windowsPlatform : linuxPlatform;
}
