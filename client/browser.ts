/** `holdline/client` for browsers: the shared client bound to the fetch platform. */
import { HoldlineClientCore } from './holdline-client.js';
import type { HoldlineClientOptions } from './options.js';
import { browserPlatform } from './platform.browser.js';

export class HoldlineClient extends HoldlineClientCore {
  constructor(url: string, options?: HoldlineClientOptions) {
    super(url, options, browserPlatform);
  }
}
export * from './exports.js';
