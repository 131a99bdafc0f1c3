/**
 * The NAT lab (netns.ts): network namespaces for a LAN, a NAT router and a
 * server, with addresses that exist only inside them. The LAN reaches the
 * server through NAT (the server sees the router's public address), the
 * server cannot call the client back, the host keeps its addresses and
 * ip_forward, and destroy() removes the namespaces and their processes.
 * Needs root (CI runs as root); without it the test fails with a message
 * saying what is missing.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { createNatLab, type NatLab } from './netns.js';
import { run } from './system.js';

describe('NAT lab (network namespaces; needs root)', { timeout: 60_000 }, () => {
  let lab: NatLab | undefined;
  after(async () => {
    await lab?.destroy();
  });

  const hostForwarding = readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8');

  // Prints one line per connection: "PEER <address>", and tells the peer its address.
  const tcpServer = `
    const net = require('node:net');
    const [host, port] = process.argv.slice(1);
    net.createServer((socket) => {
      console.log('PEER ' + socket.remoteAddress);
      socket.end('peer=' + socket.remoteAddress + '\\n');
    }).listen(Number(port), host, () => console.log('LISTENING'));
  `;
  // Connects once; prints "OK <data>" or "ERR <code>"; always exits 0 within 5 s.
  const tcpClient = `
    const net = require('node:net');
    const [host, port] = process.argv.slice(1);
    const socket = net.connect({ host, port: Number(port) });
    let data = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk) => { data += chunk; });
    socket.on('end', () => { console.log('OK ' + data.trim()); process.exit(0); });
    socket.on('error', (error) => { console.log('ERR ' + error.code); process.exit(0); });
    setTimeout(() => { console.log('ERR ETIMEDOUT'); process.exit(0); }, 5000);
  `;

  it('lets the LAN reach the server through NAT, and the server cannot call the client back', async () => {
    lab = await createNatLab();
    assert.match(lab.namespaces.server, /^hl-[0-9a-f]{6}-srv$/);
    const listed = (await run('ip', ['netns', 'list'])).stdout;
    for (const name of Object.values(lab.namespaces)) assert.match(listed, new RegExp(`^${name}\\b`, 'm'));

    const server = lab.spawn('server', process.execPath, ['-e', tcpServer, lab.serverAddr, '7000']);
    await server.waitForStdout(/LISTENING/, 10_000);
    const client = lab.spawn('lan', process.execPath, ['-e', tcpServer, lab.clientAddr, '7001']);
    await client.waitForStdout(/LISTENING/, 10_000);

    // LAN -> server works, and the server sees the router's public address.
    const out = await lab.exec('lan', process.execPath, ['-e', tcpClient, lab.serverAddr, '7000'], { timeoutMs: 15_000 });
    assert.equal(out.stdout.trim(), `OK peer=${lab.routerPublicAddr}`);
    await server.waitForStdout(new RegExp(`PEER ${lab.routerPublicAddr.replaceAll('.', '\\.')}`), 5_000);
    assert.doesNotMatch(server.stdout(), new RegExp(lab.clientAddr.replaceAll('.', '\\.')));

    // The client listens, reachable inside its LAN ...
    const local = await lab.exec('lan', process.execPath, ['-e', tcpClient, lab.clientAddr, '7001'], { timeoutMs: 15_000 });
    assert.equal(local.stdout.trim(), `OK peer=${lab.clientAddr}`);
    // ... but the server has no way to it.
    const back = await lab.exec('server', process.execPath, ['-e', tcpClient, lab.clientAddr, '7001'], { timeoutMs: 15_000 });
    assert.match(back.stdout.trim(), /^ERR (ENETUNREACH|EHOSTUNREACH|ECONNREFUSED|ETIMEDOUT)$/);
    assert.doesNotMatch(client.stdout(), /PEER 172\./);

    // The host itself is untouched: no lab addresses, same ip_forward.
    const hostAddrs = (await run('ip', ['-o', 'addr'])).stdout;
    assert.doesNotMatch(hostAddrs, /10\.213\.|172\.29\./);
    assert.equal(readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8'), hostForwarding);

    await lab.destroy();
    assert.equal(server.hasExited() && client.hasExited(), true);
    const remaining = (await run('ip', ['netns', 'list'])).stdout;
    for (const name of Object.values(lab.namespaces)) assert.doesNotMatch(remaining, new RegExp(`^${name}\\b`, 'm'));
    await lab.destroy(); // idempotent
  });
});
