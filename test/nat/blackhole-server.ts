/**
 * The black-hole NAT test's server (public namespace). A client's message
 * `later <ms> <id>` makes it send `down <id> <Date.now()>` after that many
 * ms; anything else is ignored. Prints `{"event":"listening","port":…}`.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { HoldlineServer } from '../../server/index.js';

const host = process.argv[2] ?? '0.0.0.0';
const say = (o: object) => process.stdout.write(JSON.stringify(o) + '\n');

// The default hold (25 s), well past the NAT's 8 s.
const hl = new HoldlineServer();
const server = http.createServer();
hl.attach(server, { path: '/holdline' });
hl.on('session', (s) => {
  s.on('message', (d) => {
    if (typeof d !== 'string') return;
    const [word, ms, id] = d.split(' ');
    if (word !== 'later' || ms === undefined || id === undefined) return;
    setTimeout(() => void s.send(`down ${id} ${Date.now()}`).catch(() => undefined), Math.min(Number(ms), 120_000));
  });
});
server.listen(0, host, () => say({ event: 'listening', port: (server.address() as AddressInfo).port }));
process.on('SIGTERM', () => {
  void hl.close().then(() => process.exit(0));
});
