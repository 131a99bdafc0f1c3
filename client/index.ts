/** `holdline/client` for Node: the shared client bound to the undici platform. */
import { HoldlineClientCore } from './holdline-client.js';
import type { HoldlineClientOptions } from './options.js';
import { nodePlatform } from './platform.node.js';

export class HoldlineClient extends HoldlineClientCore {
  constructor(url: string, options?: HoldlineClientOptions) {
    super(url, options, nodePlatform);
  }
}
export * from './exports.js';
