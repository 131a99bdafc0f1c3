/** `holdline/client` for Node: the shared client bound to the undici platform. */
import { HoldlineClientCore } from './holdline-client.js';
import type { HoldlineClientOptions } from './options.js';
import type { Payload } from '../shared/payload.js';
import { nodePlatform } from './platform.node.js';

export class HoldlineClient<In extends Payload = Payload, Out extends Payload = Payload> extends HoldlineClientCore<In, Out> {
  constructor(url: string, options?: HoldlineClientOptions) {
    super(url, options, nodePlatform);
  }
}
export * from './exports.js';
