/**
 * What a heap grew by between two V8 heap snapshots, per object, grouped by
 * what owns it: "Session <- ?", "string <- IncomingMessage.url", "array <-
 * Map.table". Divided by N, it reads as bytes per session.
 *
 *   npx tsx bench/tools/heap-owners.ts BEFORE.heapsnapshot AFTER.heapsnapshot N [--top=60]
 *
 * Take the snapshots with v8.writeHeapSnapshot() after a few global.gc()
 * rounds (node --expose-gc), before the clients connect and once they are
 * all idle. Diffing a Holdline server against a bare node:http server that
 * holds the same number of requests shows what Holdline itself keeps per
 * session. Snapshots of 10,000 sessions need
 * NODE_OPTIONS=--max-old-space-size=12000.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]]; edge_fields: string[]; edge_types: [string[]] } };
  nodes: number[];
  edges: number[];
  strings: string[];
}

type Tally = Map<string, { count: number; bytes: number }>;

/** Self size per "type-or-class <- owner.edge", where the owner is the first object that points at it. */
function tally(file: string): Tally {
  const s = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
  const m = s.snapshot.meta;
  const nf = m.node_fields.length;
  const ef = m.edge_fields.length;
  const nodeTypes = m.node_types[0];
  const edgeTypes = m.edge_types[0];
  const [iType, iName, iSize, iEdges] = ['type', 'name', 'self_size', 'edge_count'].map((f) => m.node_fields.indexOf(f));
  const [eType, eName, eTo] = ['type', 'name_or_index', 'to_node'].map((f) => m.edge_fields.indexOf(f));
  const { nodes, edges, strings } = s;
  const count = nodes.length / nf;
  const owner = new Int32Array(count).fill(-1);
  const via: string[] = new Array<string>(count);
  let e = 0;
  for (let i = 0; i < count; i++) {
    const edgeCount = nodes[i * nf + iEdges];
    const type = nodeTypes[nodes[i * nf + iType]];
    const owns = type === 'object' || type === 'closure' || type === 'native';
    for (let k = 0; k < edgeCount; k++) {
      const at = e + k * ef;
      const to = edges[at + eTo] / nf;
      const et = edgeTypes[edges[at + eType]];
      if (et === 'weak' || et === 'shortcut' || !owns || owner[to] !== -1) continue;
      owner[to] = i;
      via[to] = et === 'element' || et === 'hidden' ? `[${et}]` : String(strings[edges[at + eName]]);
    }
    e += edgeCount * ef;
  }
  const out: Tally = new Map();
  for (let i = 0; i < count; i++) {
    const type = nodeTypes[nodes[i * nf + iType]];
    const what = type === 'object' ? strings[nodes[i * nf + iName]] : type;
    const o = owner[i];
    const key = `${what} <- ${o >= 0 ? strings[nodes[o * nf + iName]] : '?'}.${via[i] ?? ''}`.slice(0, 100);
    const t = out.get(key) ?? { count: 0, bytes: 0 };
    t.count++;
    t.bytes += nodes[i * nf + iSize];
    out.set(key, t);
  }
  return out;
}

const { positionals, values } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '60' } } });
const [beforeFile, afterFile, perArg] = positionals;
if (!beforeFile || !afterFile) {
  process.stderr.write('usage: heap-owners.ts BEFORE.heapsnapshot AFTER.heapsnapshot [N] [--top=60]\n');
  process.exit(2);
}
const per = Number(perArg ?? 1);
const before = tally(beforeFile);
const after = tally(afterFile);
const rows = [...after].map(([key, a]) => {
  const b = before.get(key) ?? { count: 0, bytes: 0 };
  return { key, count: (a.count - b.count) / per, bytes: (a.bytes - b.bytes) / per };
});
rows.sort((x, y) => Math.abs(y.bytes) - Math.abs(x.bytes));
const total = rows.reduce((sum, r) => sum + r.bytes, 0);
process.stdout.write(`grew by ${total.toFixed(0)} bytes (self sizes, native objects included), divided by ${per}\n`);
for (const r of rows.slice(0, Number(values.top))) {
  process.stdout.write(`${r.bytes.toFixed(1).padStart(9)} ${r.count.toFixed(2).padStart(7)}  ${r.key}\n`);
}
