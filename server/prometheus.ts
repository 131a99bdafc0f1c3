/**
 * `holdline/prometheus`: a server's figures (hl.metrics()) as Prometheus
 * metrics, through `prom-client` (an optional peer dependency: install it to
 * use this entry point).
 *
 *   import { Registry } from 'prom-client';
 *   import { registerMetrics } from 'holdline/prometheus';
 *   const registry = new Registry();
 *   registerMetrics(hl, registry);
 *   app.get('/metrics', async (_req, res) => res.type(registry.contentType).send(await registry.metrics()));
 *
 * Gauges and counters are read from one snapshot per scrape; the poll-cut
 * histogram is observed as cuts happen.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { HoldlineServer } from './holdline-server.js';
import { POLL_CUT_BUCKETS_MS, type ServerMetricsSnapshot } from './metrics.js';

export interface RegisterMetricsOptions {
  /** Prefix of every metric name. Default 'holdline_'. */
  prefix?: string;
  /** Labels added to every metric (e.g. `{ node: hl.nodeId }` when several servers share a registry). */
  labels?: Record<string, string>;
}

/** A snapshot reused by every metric of one scrape (a scrape collects them one after another). */
const SNAPSHOT_REUSE_MS = 100;

/**
 * Register `hl`'s metrics on `registry` (yours: prom-client's global
 * `register` or a `new Registry()`). Returns a function that removes them.
 *
 * Gauges: `holdline_sessions`, `holdline_held_polls`, `holdline_websockets`,
 * `holdline_acks_pending`, `holdline_unacked_bytes`. Counters:
 * `holdline_sessions_opened_total`, `holdline_sessions_closed_total{reason}`,
 * `holdline_messages_total{direction="in"|"out"}`,
 * `holdline_payload_bytes_total{direction}`, `holdline_resets_total`,
 * `holdline_errors_total{code}`. Histogram: `holdline_poll_cut_age_seconds`.
 */
export function registerMetrics(hl: HoldlineServer, registry: Registry, options: RegisterMetricsOptions = {}): () => void {
  const prefix = options.prefix ?? 'holdline_';
  if (typeof prefix !== 'string' || !/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(prefix)) {
    throw new TypeError(`option "prefix" must be a valid Prometheus metric name prefix, got ${JSON.stringify(prefix)}`);
  }
  const base = options.labels ?? {};
  const baseNames = Object.keys(base);
  const registers = [registry];
  let taken: { at: number; s: ServerMetricsSnapshot } | undefined;
  const snap = (): ServerMetricsSnapshot => {
    const now = Date.now();
    if (!taken || now - taken.at > SNAPSHOT_REUSE_MS) taken = { at: now, s: hl.metrics() };
    return taken.s;
  };

  const gauge = (name: string, help: string, read: (s: ServerMetricsSnapshot) => number) =>
    new Gauge({
      name: named(name), help, labelNames: baseNames, registers,
      collect() {
        this.set(base, read(snap()));
      },
    });
  /** A counter whose values are the snapshot's (prom-client counters only grow: reset, then set by inc()). */
  const counter = (name: string, help: string, label: string | undefined, read: (s: ServerMetricsSnapshot) => Record<string, number>) =>
    new Counter({
      name: named(name), help, labelNames: label === undefined ? baseNames : [...baseNames, label], registers,
      collect() {
        this.reset();
        for (const [key, v] of Object.entries(read(snap()))) {
          this.inc(label === undefined ? base : { ...base, [label]: key }, v);
        }
      },
    });

  const names: string[] = [];
  const named = (name: string): string => {
    names.push(prefix + name);
    return prefix + name;
  };
    gauge('sessions', 'Open sessions this node owns.', (s) => s.sessions);
    gauge('held_polls', 'Polls held on this node.', (s) => s.heldPolls);
    gauge('websockets', 'WebSockets open on this node.', (s) => s.websockets);
    gauge('acks_pending', 'Messages sent and not yet acknowledged by their clients.', (s) => s.acksPending);
    gauge('unacked_bytes', 'Payload bytes sent and not yet acknowledged by their clients.', (s) => s.bytesPending);
    counter('sessions_opened_total', 'Sessions opened (or taken over) on this node.', undefined, (s) => ({ '': s.sessionsOpened }));
    counter('sessions_closed_total', 'Sessions closed, by close reason.', 'reason', (s) => s.closeReasons);
    counter('messages_total', 'Messages: in (from clients) and out (to clients).', 'direction', (s) => ({ in: s.messagesReceived, out: s.messagesSent }));
    counter('payload_bytes_total', 'Payload bytes: in (from clients) and out (to clients).', 'direction', (s) => ({ in: s.bytesReceived, out: s.bytesSent }));
    counter('resets_total', 'Sessions ended so that their client opens a new one (reset).', undefined, (s) => ({ '': s.resets }));
    counter('errors_total', 'Error answers and reported errors, by code.', 'code', (s) => s.errors);
  const cuts = new Histogram({
    name: named('poll_cut_age_seconds'),
    help: 'How long held polls had been held when their client went away (a proxy or NAT cut them).',
    labelNames: baseNames,
    buckets: POLL_CUT_BUCKETS_MS.map((ms) => ms / 1000),
    registers,
  });
  const unsubscribe = hl.metricsSource.onPollCut((ageMs) => cuts.observe(base, ageMs / 1000));
  return () => {
    unsubscribe();
    for (const name of names) registry.removeSingleMetric(name);
  };
}
