/**
 * The NAT test's server, run inside the "public" network namespace.
 * Prints one JSON line per event on stdout: listening, peer, done.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { HoldlineServer } from '../../server/index.js';

const host = process.argv[2] ?? '0.0.0.0';
const count = Number(process.argv[3] ?? '500');
const say = (o: object) => process.stdout.write(JSON.stringify(o) + '\n');

const hl = new HoldlineServer({ pollTimeoutMs: 5_000 });
const peers = new Set<string>();
const server = http.createServer();
server.on('connection', (socket) => {
  const peer = socket.remoteAddress ?? '?';
  if (!peers.has(peer)) {
    peers.add(peer);
    say({ event: 'peer', address: peer });
  }
});
hl.attach(server, { path: '/holdline' });
hl.on('session', (s) => {
  let received = 0;
  let inOrder = true;
  s.on('message', (d) => {
    if (d !== `up ${received}`) inOrder = false;
    received++;
    if (received === count) say({ event: 'received', count: received, inOrder });
  });
  void (async () => {
    for (let i = 0; i < count; i++) await s.send(`down ${i}`);
  })();
});
server.listen(0, host, () => say({ event: 'listening', port: (server.address() as AddressInfo).port }));
process.on('SIGTERM', () => {
  void hl.close().then(() => process.exit(0));
});
