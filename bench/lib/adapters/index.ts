/** Pick an adapter by library name. */
import { connectEngineIoClient, startEngineIoServer } from './engineio.js';
import { connectHoldlineClient, startHoldlineServer } from './holdline.js';
import type { AdapterOptions, BenchClient, BenchServer, ClientOptions, LibName } from './types.js';

export * from './types.js';

export function startServer(lib: LibName, options: AdapterOptions): Promise<BenchServer> {
  if (options.store && lib !== 'holdline') return Promise.reject(new Error(`a ${options.store.kind} store is a Holdline option; ${lib} has none`));
  return lib === 'holdline' ? startHoldlineServer(options) : startEngineIoServer(options);
}

export function connectClient(lib: LibName, origin: string, options: ClientOptions): Promise<BenchClient> {
  return lib === 'holdline' ? connectHoldlineClient(origin, options) : connectEngineIoClient(origin, options);
}
