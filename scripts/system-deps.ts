/**
 * The system programs the tests drive for real: Chromium, squid, nginx,
 * redis-server, iproute2, iptables, and openssl (the https run's
 * certificate). Run before the tests (`npm test` does). A missing
 * one is installed with apt-get when running as root; otherwise this fails
 * with the Debian package names to install. Never a silent skip.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

interface Need {
  pkg: string;
  /** Any of these paths present means installed. */
  paths: string[];
}

const NEEDS: Need[] = [
  { pkg: 'chromium', paths: ['/usr/bin/chromium'] },
  { pkg: 'squid', paths: ['/usr/sbin/squid'] },
  { pkg: 'nginx-light', paths: ['/usr/sbin/nginx'] },
  { pkg: 'redis-server', paths: ['/usr/bin/redis-server'] },
  { pkg: 'openssl', paths: ['/usr/bin/openssl'] },
  { pkg: 'iproute2', paths: ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip'] },
  { pkg: 'iptables', paths: ['/usr/sbin/iptables', '/sbin/iptables'] },
];

export function missingPackages(): string[] {
  return NEEDS.filter((n) => !n.paths.some((p) => existsSync(p))).map((n) => n.pkg);
}

export function ensureSystemDeps(): void {
  const missing = missingPackages();
  if (missing.length === 0) return;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot) {
    throw new Error(`missing system packages: ${missing.join(', ')}. Install them with: sudo apt-get install -y ${missing.join(' ')}`);
  }
  console.log(`installing system packages: ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  const r = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { stdio: 'inherit', env });
  if (r.status !== 0) throw new Error(`apt-get install ${missing.join(' ')} failed (exit ${r.status})`);
  // Debian starts freshly installed daemons where it can; the tests run their own
  // (only the ones installed just now: a Redis the machine already ran is not ours to stop).
  const daemons: Record<string, string> = { squid: 'squid', 'nginx-light': 'nginx', 'redis-server': 'redis-server' };
  for (const pkg of missing) {
    const svc = daemons[pkg];
    if (svc !== undefined) spawnSync('service', [svc, 'stop'], { stdio: 'ignore' });
  }
  const still = missingPackages();
  if (still.length > 0) throw new Error(`still missing after apt-get: ${still.join(', ')}`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    ensureSystemDeps();
    console.log('system packages: all present');
  } catch (e) {
    console.error(String((e as Error).message));
    process.exit(1);
  }
}
