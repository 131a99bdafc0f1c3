/** Start a HoldlineServer on a node:http server on 127.0.0.1, port 0, stopped when the test ends. */
import assert from 'node:assert/strict';
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestContext } from 'node:test';
import { HoldlineServer, type HoldlineServerOptions } from '../../server/index.js';
import { createTestServer, testScheme } from './tls.js';

export interface RunningHoldline {
  server: HoldlineServer;
  http: http.Server;
  port: number;
  /** Base URL of the endpoints, e.g. http://127.0.0.1:PORT/holdline */
  url: string;
  stop(): Promise<void>;
}

export async function startHoldline(t: TestContext | undefined, options: HoldlineServerOptions = {}, path = '/holdline'): Promise<RunningHoldline> {
  const server = new HoldlineServer(options);
  server.on('error', (e) => {
    throw e;
  });
  const httpServer = createTestServer();
  server.attach(httpServer, { path });
  await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  const port = (httpServer.address() as AddressInfo).port;
  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      await server.close();
      httpServer.closeAllConnections();
      await new Promise<void>((resolve) => httpServer.close(() => resolve()));
    })());
  t?.after(stop);
  return { server, http: httpServer, port, url: `${testScheme()}://127.0.0.1:${port}${path}`, stop };
}

/** The session id of a client, failing the test if it has none (it is not connected). */
export function sessionIdOf(client: { readonly sessionId: string | undefined }): string {
  const id = client.sessionId;
  assert.ok(id !== undefined, 'the client has a session id (is it connected?)');
  return id;
}
