/** How the browser tests launch Chromium: the Debian package, kept off the network. */

export const CHROMIUM_PATH = '/usr/bin/chromium';

/** Nothing leaves the machine: no background services, and only loopback names resolve. */
export const CHROMIUM_ARGS: readonly string[] = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-features=NetworkTimeServiceQuerying',
  '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE localhost',
];
