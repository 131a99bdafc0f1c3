// A NAT lab made of three Linux network namespaces, for tests of clients
// behind NAT. Needs root (CAP_SYS_ADMIN + CAP_NET_ADMIN), iproute2, iptables.
//
//   lan namespace           router namespace                server namespace
//   (private client)        (NAT gateway)                   ("public" side)
//   eth0 10.213.0.2/24 ---- lan0 10.213.0.1/24
//   default via 10.213.0.1  pub0 172.29.0.1/24 ------------ eth0 172.29.0.2/24
//                           ip_forward=1                    (no route to 10.213.0.0/24)
//                           MASQUERADE out of pub0
//
// The server sees every LAN connection as coming from 172.29.0.1 and has no
// route back to 10.213.0.2: it cannot call the client back. The addresses
// exist only inside these namespaces; the host's interfaces, routes, sysctls
// and firewall are never touched (ip_forward and the iptables rule are
// per-namespace).

import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { CommandFailedError, MiddleboxError } from './errors.js';
import { onProcessExit, spawnManaged, type ManagedProcess } from './process.js';
import { ensureExecutable, run, type RunResult } from './system.js';

export type LabNamespace = 'server' | 'router' | 'lan';

export interface NatLab {
  /** The real namespace names (`hl-<random>-srv`, `-rtr`, `-lan`). */
  readonly namespaces: Readonly<Record<LabNamespace, string>>;
  /** The server's address on the public side. */
  readonly serverAddr: string;
  /** The router's public address: the peer address the server sees for LAN clients. */
  readonly routerPublicAddr: string;
  /** The router's address on the LAN (the LAN's default gateway). */
  readonly routerLanAddr: string;
  /** The client's private address in the LAN. */
  readonly clientAddr: string;
  /** Runs a command inside a namespace and waits for it (bounded); rejects with CommandFailedError on failure. */
  exec(ns: LabNamespace, command: string, args: readonly string[], options?: { timeoutMs?: number }): Promise<RunResult>;
  /**
   * Starts a long-running command inside a namespace, e.g.
   * `lab.spawn('server', process.execPath, ['--import', 'tsx', 'script.ts'])`.
   * destroy() stops it if the test has not.
   */
  spawn(
    ns: LabNamespace,
    command: string,
    args: readonly string[],
    options?: { name?: string; cwd?: string; env?: NodeJS.ProcessEnv },
  ): ManagedProcess;
  /** Stops spawned processes and deletes the namespaces (with their links). Bounded, idempotent. */
  destroy(): Promise<void>;
}

const SERVER_ADDR = '172.29.0.2';
const ROUTER_PUBLIC_ADDR = '172.29.0.1';
const ROUTER_LAN_ADDR = '10.213.0.1';
const CLIENT_ADDR = '10.213.0.2';
const PREFIX = 24;

function namespacePids(ip: string, name: string): number[] {
  const result = spawnSync(ip, ['netns', 'pids', name], { encoding: 'utf8', timeout: 5_000 });
  return (result.stdout ?? '')
    .split('\n')
    .map((line) => Number(line.trim()))
    .filter((pid) => Number.isInteger(pid) && pid > 0);
}

function killNamespaceProcesses(ip: string, name: string): void {
  for (const pid of namespacePids(ip, name)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}

/** Synchronous teardown, for the process 'exit' hook. */
function destroySync(ip: string, names: readonly string[]): void {
  for (const name of names) {
    killNamespaceProcesses(ip, name);
    spawnSync(ip, ['netns', 'del', name], { timeout: 5_000 });
  }
}

/** Creates the three namespaces, links, addresses, routes and the NAT rule. */
export async function createNatLab(): Promise<NatLab> {
  const ip = await ensureExecutable({ name: 'ip', debianPackage: 'iproute2' });
  const iptables = await ensureExecutable({ name: 'iptables', debianPackage: 'iptables' });

  const id = randomBytes(3).toString('hex');
  const namespaces: Record<LabNamespace, string> = {
    server: `hl-${id}-srv`,
    router: `hl-${id}-rtr`,
    lan: `hl-${id}-lan`,
  };
  const created: string[] = [];
  const spawned = new Set<ManagedProcess>();
  const unregisterExitHook = onProcessExit(() => destroySync(ip, created));

  const ipCmd = (args: readonly string[]): Promise<RunResult> => run(ip, args, { timeoutMs: 10_000 });
  const inNs = (ns: LabNamespace, command: string, args: readonly string[], timeoutMs = 30_000): Promise<RunResult> =>
    run(ip, ['netns', 'exec', namespaces[ns], command, ...args], { timeoutMs });

  let destroying: Promise<void> | undefined;
  const destroy = (): Promise<void> => {
    destroying ??= (async () => {
      await Promise.allSettled([...spawned].map((proc) => proc.stop({ graceMs: 2_000 })));
      const failures: string[] = [];
      for (const name of created) {
        killNamespaceProcesses(ip, name);
        try {
          await ipCmd(['netns', 'del', name]);
        } catch (error) {
          const stderr = error instanceof CommandFailedError ? error.stderr : String(error);
          if (!/No such file|does not exist/i.test(stderr)) failures.push(`${name}: ${stderr.trim()}`);
        }
      }
      const left = (await ipCmd(['netns', 'list'])).stdout;
      const survivors = created.filter((name) => new RegExp(`^${name}\\b`, 'm').test(left));
      unregisterExitHook();
      if (survivors.length > 0 || failures.length > 0) {
        throw new MiddleboxError(
          'MIDDLEBOX_COMMAND_FAILED',
          `could not delete network namespaces ${survivors.join(', ')}: ${failures.join('; ')}`,
        );
      }
    })();
    return destroying;
  };

  try {
    for (const ns of ['server', 'router', 'lan'] as const) {
      try {
        await ipCmd(['netns', 'add', namespaces[ns]]);
      } catch (error) {
        const stderr = error instanceof CommandFailedError ? error.stderr.trim() : String(error);
        throw new MiddleboxError(
          'MIDDLEBOX_NOT_PRIVILEGED',
          `\`ip netns add ${namespaces[ns]}\` failed (${stderr}). The NAT lab needs root, or CAP_SYS_ADMIN and ` +
            'CAP_NET_ADMIN, to create network namespaces, plus the Debian packages iproute2 (ip) and iptables. ' +
            'Run the tests as root (CI does).',
          { cause: error },
        );
      }
      created.push(namespaces[ns]);
      await ipCmd(['-n', namespaces[ns], 'link', 'set', 'lo', 'up']);
    }

    // Links are created from inside the router namespace, with the peer end
    // placed straight into the other namespace: nothing appears on the host.
    const router = namespaces.router;
    await ipCmd(['-n', router, 'link', 'add', 'pub0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', namespaces.server]);
    await ipCmd(['-n', router, 'link', 'add', 'lan0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', namespaces.lan]);

    await ipCmd(['-n', router, 'addr', 'add', `${ROUTER_PUBLIC_ADDR}/${PREFIX}`, 'dev', 'pub0']);
    await ipCmd(['-n', router, 'addr', 'add', `${ROUTER_LAN_ADDR}/${PREFIX}`, 'dev', 'lan0']);
    await ipCmd(['-n', router, 'link', 'set', 'pub0', 'up']);
    await ipCmd(['-n', router, 'link', 'set', 'lan0', 'up']);

    await ipCmd(['-n', namespaces.server, 'addr', 'add', `${SERVER_ADDR}/${PREFIX}`, 'dev', 'eth0']);
    await ipCmd(['-n', namespaces.server, 'link', 'set', 'eth0', 'up']);
    // Deliberately no route from the server to the LAN.

    await ipCmd(['-n', namespaces.lan, 'addr', 'add', `${CLIENT_ADDR}/${PREFIX}`, 'dev', 'eth0']);
    await ipCmd(['-n', namespaces.lan, 'link', 'set', 'eth0', 'up']);
    await ipCmd(['-n', namespaces.lan, 'route', 'add', 'default', 'via', ROUTER_LAN_ADDR]);

    // net.ipv4.ip_forward is per network namespace: this is the router's only.
    await inNs('router', 'sh', ['-c', 'echo 1 > /proc/sys/net/ipv4/ip_forward']);
    await inNs('router', iptables, ['-t', 'nat', '-A', 'POSTROUTING', '-o', 'pub0', '-j', 'MASQUERADE']);
  } catch (error) {
    await destroy().catch(() => undefined);
    throw error;
  }

  return {
    namespaces,
    serverAddr: SERVER_ADDR,
    routerPublicAddr: ROUTER_PUBLIC_ADDR,
    routerLanAddr: ROUTER_LAN_ADDR,
    clientAddr: CLIENT_ADDR,
    async exec(ns, command, args, options = {}) {
      if (destroying !== undefined) throw new MiddleboxError('MIDDLEBOX_COMMAND_FAILED', 'the NAT lab is destroyed');
      return await inNs(ns, command, args, options.timeoutMs ?? 30_000);
    },
    spawn(ns, command, args, options = {}) {
      if (destroying !== undefined) throw new MiddleboxError('MIDDLEBOX_COMMAND_FAILED', 'the NAT lab is destroyed');
      const proc = spawnManaged({
        name: options.name ?? `${command} in ${namespaces[ns]}`,
        command: ip,
        args: ['netns', 'exec', namespaces[ns], command, ...args],
        cwd: options.cwd,
        env: options.env,
      });
      spawned.add(proc);
      void proc.exited.then(() => spawned.delete(proc));
      return proc;
    },
    destroy,
  };
}
