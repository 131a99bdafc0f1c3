/**
 * The NAT test's client, run inside the private LAN namespace behind the
 * router. It also listens on a port, as a "call me back" design would need,
 * to show that the server cannot reach it. Prints JSON lines on stdout.
 */
import net from 'node:net';
import { HoldlineClient } from '../../client/index.js';

const url = process.argv[2];
if (url === undefined) throw new Error('usage: client-main.ts <holdline url> [message count]');
const count = Number(process.argv[3] ?? '500');
const say = (o: object) => process.stdout.write(JSON.stringify(o) + '\n');

const callback = net.createServer((sock) => {
  say({ event: 'callback-connected', from: sock.remoteAddress });
  sock.destroy();
});
callback.listen(0, '0.0.0.0', () => say({ event: 'callback-listening', port: (callback.address() as net.AddressInfo).port }));

const c = new HoldlineClient(url, { reconnect: { minDelayMs: 50, maxDelayMs: 500 } });
let received = 0;
let inOrder = true;
c.on('message', (d) => {
  if (d !== `down ${received}`) inOrder = false;
  received++;
  if (received === count) say({ event: 'received', count: received, inOrder });
});
c.on('error', (e) => say({ event: 'error', code: e.code, message: e.message }));
await c.connect();
say({ event: 'open', sessionId: c.sessionId });
for (let i = 0; i < count; i++) await c.send(`up ${i}`);
process.on('SIGTERM', () => {
  void c.close().then(() => process.exit(0));
});
