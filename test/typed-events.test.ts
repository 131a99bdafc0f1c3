/**
 * Typed payloads (issue 15): HoldlineClient<In, Out> and
 * HoldlineServer<In, Out, Data> type messages, requests, replies and
 * session.data with no run-time cost. The checks are the type checker's:
 * `npm run typecheck` (tsc) compiles this file, and each `@ts-expect-error`
 * line must be an error, or the check fails ("unused directive"). The test
 * below only runs the typed objects, to show they are the plain ones.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HoldlineClient } from '../client/index.js';
import { HoldlineServer, type Session } from '../server/index.js';

/** What clients send, and what the server sends: template literal types. */
type Up = `ask:${string}` | `say:${string}`;
type Down = `answer:${string}` | `news:${string}`;
interface User {
  name: string;
  admin: boolean;
}

/** Never called: a function the type checker reads. */
export function typeChecks(client: HoldlineClient<Down, Up>, server: HoldlineServer<Up, Down, User>): void {
  // ---- the client ----
  void client.send('say:hello');
  // @ts-expect-error -- not an Up
  void client.send('hello');
  // @ts-expect-error -- not an Up (binary is not one either)
  void client.send(new Uint8Array(1));
  const answer: Promise<Down> = client.request('ask:time', { timeoutMs: 1_000 });
  void answer;
  // @ts-expect-error -- a request's reply is a Down, not an Up
  const wrong: Promise<Up> = client.request('ask:time');
  void wrong;
  client.on('message', (m) => {
    const d: Down = m;
    // @ts-expect-error -- a message from the server is a Down
    const u: Up = m;
    void d;
    void u;
  });
  client.on('request', (data, reply) => {
    const d: Down = data;
    void d;
    reply('say:ok');
    reply(new Error('refused'));
    // @ts-expect-error -- the reply is an Up
    reply('answer:no');
  });
  client.on('request', async () => 'say:from an async listener' as const);
  // @ts-expect-error -- a returned reply must be an Up too
  client.on('request', () => 'answer:wrong' as const);
  client.on('close', (_reason, unacked) => {
    const left: Up[] = unacked;
    void left;
  });

  // ---- the server ----
  server.on('session', (s) => {
    const who: User = s.data;
    // @ts-expect-error -- data is a User
    const n: number = s.data;
    void who;
    void n;
    void s.send('news:welcome');
    // @ts-expect-error -- the server sends Downs
    void s.send('say:hello');
    s.on('message', (m) => {
      const u: Up = m;
      void u;
    });
    s.on('request', (data) => (data.startsWith('ask:') ? ('answer:42' as const) : undefined));
    const back: Promise<Up> = s.request('news:ping');
    void back;
  });
  const s: Session<Up, Down, User> | undefined = server.session('some-id');
  void s;
  // The hook's data is the server's Data.
  new HoldlineServer<Up, Down, User>({ authenticate: (_req, auth) => (auth?.token === 't' ? { name: 'ann', admin: false } : false) });
  // @ts-expect-error -- the hook must return a User (or true/false)
  new HoldlineServer<Up, Down, User>({ authenticate: () => ({ name: 1 }) });
}

test('typed clients and servers are the plain classes (types cost nothing at run time)', async () => {
  const server = new HoldlineServer<Up, Down, User>();
  const client = new HoldlineClient<Down, Up>('http://127.0.0.1:9/holdline');
  assert.ok(server instanceof HoldlineServer);
  assert.ok(client instanceof HoldlineClient);
  assert.equal(Object.getPrototypeOf(client), HoldlineClient.prototype);
  await client.close();
  await server.close();
});
