/** `holdline connect URL`: an interactive client. Lines typed go out; messages come out on stdout. */
import { createInterface } from 'node:readline';
import { HoldlineClient } from '../../client/index.js';
import { CLIENT_FLAGS, CLIENT_FLAGS_HELP, clientOptions } from '../client-flags.js';
import { line, parse, urlArg, type Command } from '../command.js';

const help = `Usage: holdline connect URL [options]

Opens a session to the Holdline server at URL (its mount point, e.g.
http://localhost:3000/holdline). Each line read from stdin is sent as one
message; each message received is printed on stdout, one per line (binary
ones as "<binary N bytes>"). What happens to the session (open, reconnecting,
reset, transport, close) goes to stderr, prefixed with "* ". Ends at the end
of stdin (Ctrl-D) or on Ctrl-C, closing the session.

${CLIENT_FLAGS_HELP}`;

export const command: Command = {
  summary: 'interactive client: stdin lines out, messages to stdout',
  help,
  async run(args, io) {
    const { values, positionals } = parse(args, CLIENT_FLAGS);
    const url = urlArg(positionals);
    const client = new HoldlineClient(url, clientOptions(values));
    const note = (text: string) => line(io.stderr, `* ${text}`);
    client.on('message', (m) => line(io.stdout, typeof m === 'string' ? m : `<binary ${m.byteLength} bytes>`));
    client.on('open', (e) => note(`${e.resumed ? 'resumed' : 'open'}: session ${e.sessionId} (${client.transport})`));
    client.on('reconnecting', (e) => note(`reconnecting (attempt ${e.attempt}, in ${e.delayMs} ms): ${e.error.code}: ${e.error.message}`));
    client.on('reset', (e) => note(`reset: new session ${e.sessionId} (${e.reason.code}); ${e.lost.length} message(s) lost`));
    client.on('transport', (e) => note(`transport: ${e.previous} -> ${e.transport}`));
    client.on('error', (e) => note(`error: ${e.code}: ${e.message}`));
    const closed = new Promise<string>((resolve) => client.on('close', (reason, unacked) => resolve(`${reason.code}${unacked.length > 0 ? `, ${unacked.length} unacknowledged` : ''}`)));

    note(`connecting to ${url}`);
    try {
      await Promise.race([client.connect(), aborted(io.signal)]);
    } catch (e) {
      await client.close();
      throw e;
    }
    if (io.signal.aborted) {
      await client.close();
      return 0;
    }
    const rl = createInterface({ input: io.stdin, crlfDelay: Infinity, terminal: false });
    const sends: Promise<void>[] = [];
    rl.on('line', (text) => {
      const sent = client.send(text);
      sent.catch((e: unknown) => note(`not sent: ${e instanceof Error ? e.message : String(e)}`));
      sends.push(sent);
    });
    const ended = new Promise<void>((resolve) => rl.once('close', resolve));
    const gone = await Promise.race([ended.then(() => 'eof' as const), aborted(io.signal).then(() => 'signal' as const), closed.then(() => 'closed' as const)]);
    rl.close();
    if (gone !== 'closed') {
      await Promise.allSettled(sends);
      await client.close();
    }
    note(`closed: ${await closed}`);
    return gone === 'closed' ? 1 : 0;
  },
};

function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}
