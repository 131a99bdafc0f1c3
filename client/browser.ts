/** `holdline/client` for browsers: the shared client bound to the fetch platform. */
import { HoldlineClientCore } from './holdline-client.js';
import type { HoldlineClientOptions } from './options.js';
import type { Payload } from '../shared/payload.js';
import { browserPlatform } from './platform.browser.js';

export class HoldlineClient<In extends Payload = Payload, Out extends Payload = Payload> extends HoldlineClientCore<In, Out> {
  constructor(url: string, options?: HoldlineClientOptions) {
    super(url, options, browserPlatform);
  }
}
export * from './exports.js';
