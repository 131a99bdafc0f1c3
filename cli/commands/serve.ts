/** `holdline serve`: a Holdline server that echoes (or relays) messages. */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HoldlineServer, type HoldlineServerOptions, type Session } from '../../server/index.js';
import { intFlag, line, parse, stringFlag, UsageError, type Command } from '../command.js';

const help = `Usage: holdline serve [--port N] [--host H] [--path P] [--redis URL] [--mode echo|relay]

Runs a Holdline server on node:http.
  --port N       port to listen on (default 3000, or PORT; 0 picks a free one)
  --host H       address to listen on (default: all)
  --path P       mount point of the endpoints (default /holdline)
  --redis URL    share sessions with other servers through Redis (needs ioredis)
  --mode echo    send every message back to its session (default)
  --mode relay   send every message to every other session on this server
  --quiet        do not print sessions opening and closing

Prints "listening on URL" once ready; stops on Ctrl-C (SIGINT) or SIGTERM.`;

export const command: Command = {
  summary: 'run a server: echo (default) or relay to every other session',
  help,
  async run(args, io) {
    const { values, positionals } = parse(args, {
      port: { type: 'string' },
      host: { type: 'string' },
      path: { type: 'string' },
      redis: { type: 'string' },
      mode: { type: 'string' },
      quiet: { type: 'boolean' },
    });
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals.join(' ')}`);
    const port = intFlag(values.port ?? io.env.PORT, 'port', 3000, 0, 65535);
    const path = stringFlag(values.path) ?? '/holdline';
    if (!path.startsWith('/')) throw new UsageError(`--path must start with /, got ${path}`);
    const mode = stringFlag(values.mode) ?? 'echo';
    if (mode !== 'echo' && mode !== 'relay') throw new UsageError(`--mode is echo or relay, got ${mode}`);
    const host = stringFlag(values.host);
    const quiet = values.quiet === true;

    const options: HoldlineServerOptions = {};
    const redisUrl = stringFlag(values.redis);
    let closeStore: (() => Promise<void>) | undefined;
    if (redisUrl !== undefined) {
      const { RedisStore } = await import('../../server/redis.js');
      const store = new RedisStore({ url: redisUrl });
      options.store = store;
      closeStore = () => store.close();
    }
    const hl = new HoldlineServer(options);
    hl.on('error', (e) => line(io.stderr, `error: ${e instanceof Error ? e.message : String(e)}`));
    hl.on('session', (s: Session) => {
      if (!quiet) line(io.stdout, `session ${s.id} opened (${hl.sessionCount} open)`);
      s.on('message', (m) => {
        if (mode === 'echo') {
          void s.send(m);
          return;
        }
        for (const other of hl.sessions()) if (other !== s) void other.send(m);
      });
      s.on('close', (reason) => {
        if (!quiet) line(io.stdout, `session ${s.id} closed: ${reason.code} (${hl.sessionCount} open)`);
      });
    });

    const http = createServer((_req, res) => {
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`Holdline serves at ${path}\n`);
    });
    hl.attach(http, { path });
    const listening = await new Promise<Error | undefined>((resolve) => {
      http.once('error', resolve);
      http.listen(port, host, () => resolve(undefined));
    });
    if (listening) {
      await hl.close();
      await closeStore?.();
      const code = (listening as { code?: string }).code;
      if (code === 'EADDRINUSE') line(io.stderr, `holdline serve: port ${port} is in use; pick another with --port N (or PORT=N), 0 for any free port`);
      else line(io.stderr, `holdline serve: cannot listen on ${host ?? '*'}:${port}: ${listening.message}`);
      return 1;
    }
    const addr = http.address() as AddressInfo;
    const shown = addr.family === 'IPv6' ? (addr.address === '::' ? 'localhost' : `[${addr.address}]`) : addr.address === '0.0.0.0' ? 'localhost' : addr.address;
    line(io.stdout, `listening on http://${shown}:${addr.port}${path} (${mode}${redisUrl === undefined ? '' : ', redis'})`);

    await new Promise<void>((resolve) => {
      if (io.signal.aborted) resolve();
      io.signal.addEventListener('abort', () => resolve(), { once: true });
    });
    line(io.stdout, 'stopping');
    await hl.close();
    http.closeAllConnections();
    await new Promise<void>((resolve) => http.close(() => resolve()));
    await closeStore?.();
    return 0;
  },
};
