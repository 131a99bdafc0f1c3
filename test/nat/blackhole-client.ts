/**
 * The black-hole NAT test's client (LAN namespace, behind a router whose NAT
 * forgets a connection idle for 8 s). It asks the server for messages after
 * idle gaps and prints, for each, how long after it was sent it arrived.
 *
 * Scenario `idle` (argv[3]): one message after 12 s idle (the poll is dead by
 * then: it is found at its deadline, the first silent death), then messages
 * after 12 s and 20 s idle. Scenario `sending`: the client sends every
 * 500 ms meanwhile, and asks for one message after 12 s idle.
 * Prints `{"event":"arrived","id","delayMs","stats"}` lines, then `{"event":"done"}`.
 */
import { HoldlineClient } from '../../client/index.js';

const url = process.argv[2];
const scenario = process.argv[3];
if (url === undefined || (scenario !== 'idle' && scenario !== 'sending')) throw new Error('usage: blackhole-client.ts <url> idle|sending');
const say = (o: object) => process.stdout.write(JSON.stringify(o) + '\n');

const c = new HoldlineClient(url, { transports: ['polling'], reconnect: { minDelayMs: 50, maxDelayMs: 500 } });
const waiting = new Map<string, (delayMs: number) => void>();
c.on('message', (d) => {
  if (typeof d !== 'string') return;
  const [, id, sentAt] = d.split(' ');
  if (id !== undefined) waiting.get(id)?.(Date.now() - Number(sentAt));
});
c.on('error', (e) => say({ event: 'error', code: e.code, message: e.message }));
c.on('reset', () => say({ event: 'reset' }));

/** Ask for message `id` after `ms`; resolves with how late it arrived (or -1 after a bound). */
async function ask(id: string, ms: number): Promise<void> {
  const arrived = new Promise<number>((resolve) => {
    waiting.set(id, resolve);
    setTimeout(() => resolve(-1), ms + 60_000);
  });
  await c.send(`later ${ms} ${id}`);
  const delayMs = await arrived;
  say({ event: 'arrived', id, idleMs: ms, delayMs, stats: c.stats });
}

await c.connect();
say({ event: 'open', sessionId: c.sessionId });
if (scenario === 'idle') {
  await ask('first', 12_000);
  await ask('second', 12_000);
  await ask('third', 20_000);
} else {
  const ticker = setInterval(() => void c.send('tick').catch(() => undefined), 500);
  await ask('first', 12_000);
  clearInterval(ticker);
}
say({ event: 'done', sessionId: c.sessionId });
await c.close();
process.exit(0);
