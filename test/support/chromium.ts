// Headless Debian Chromium driven by playwright-core: the browser is the packaged one (never a download),
// started with flags that keep it off the network except for the loopback pages a test opens.
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** `extraArgs`: e.g. `--host-resolver-rules=MAP www.example.test 127.0.0.1` to open a site by its name on loopback. */
export function launchChromium(executablePath: string, extraArgs: string[] = []): Promise<Browser> {
  return chromium.launch({ executablePath, headless: true, args: [...CHROMIUM_ARGS, ...extraArgs], timeout: 60_000 });
}
