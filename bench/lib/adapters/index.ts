/** Pick an adapter by library name. */
import { connectEngineIoClient, startEngineIoServer } from './engineio.js';
import { connectHoldlineClient, startHoldlineServer } from './holdline.js';
import { connectRawPollClient, startRawPollServer } from './raw-poll.js';
import { connectRawWsClient, startRawWsServer } from './raw-ws.js';
import type { AdapterOptions, AnyLib, BenchClient, BenchServer, ClientOptions } from './types.js';

export * from './types.js';

export function startServer(lib: AnyLib, options: AdapterOptions): Promise<BenchServer> {
  if (options.store && lib !== 'holdline') return Promise.reject(new Error(`a ${options.store.kind} store is a Holdline option; ${lib} has none`));
  if (lib === 'ws') return startRawWsServer(options);
  if (lib === 'poll') return startRawPollServer(options);
  return lib === 'holdline' ? startHoldlineServer(options) : startEngineIoServer(options);
}

export function connectClient(lib: AnyLib, origin: string, options: ClientOptions): Promise<BenchClient> {
  if (lib === 'ws') return connectRawWsClient(origin, options);
  if (lib === 'poll') return connectRawPollClient(origin, options);
  return lib === 'holdline' ? connectHoldlineClient(origin, options) : connectEngineIoClient(origin, options);
}
