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

/** Index of a field in a snapshot's node or edge records; throws for a snapshot format without it. */
function field(fields: string[], name: string): number {
  const i = fields.indexOf(name);
  if (i < 0) throw new Error(`heap snapshot has no "${name}" field`);
  return i;
}

/** The number at `i`; throws past the end (a malformed snapshot). */
function num(a: ArrayLike<number>, i: number): number {
  const v = a[i];
  if (v === undefined) throw new Error(`heap snapshot: index ${i} out of range`);
  return v;
}

/** Self size per "type-or-class <- owner.edge", where the owner is the first object that points at it. */
function tally(file: string): Tally {
  const s = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
  const m = s.snapshot.meta;
  const nf = m.node_fields.length;
  const ef = m.edge_fields.length;
  const nodeTypes = m.node_types[0];
  const edgeTypes = m.edge_types[0];
  const iType = field(m.node_fields, 'type');
  const iName = field(m.node_fields, 'name');
  const iSize = field(m.node_fields, 'self_size');
  const iEdges = field(m.node_fields, 'edge_count');
  const eType = field(m.edge_fields, 'type');
  const eName = field(m.edge_fields, 'name_or_index');
  const eTo = field(m.edge_fields, 'to_node');
  const { nodes, edges, strings } = s;
  const count = nodes.length / nf;
  const owner = new Int32Array(count).fill(-1);
  const via: string[] = new Array<string>(count);
  let e = 0;
  for (let i = 0; i < count; i++) {
    const edgeCount = num(nodes, i * nf + iEdges);
    const type = nodeTypes[num(nodes, i * nf + iType)];
    const owns = type === 'object' || type === 'closure' || type === 'native';
    for (let k = 0; k < edgeCount; k++) {
      const at = e + k * ef;
      const to = num(edges, at + eTo) / nf;
      const et = edgeTypes[num(edges, at + eType)];
      if (et === 'weak' || et === 'shortcut' || !owns || owner[to] !== -1) continue;
      owner[to] = i;
      via[to] = et === 'element' || et === 'hidden' ? `[${et}]` : String(strings[num(edges, at + eName)]);
    }
    e += edgeCount * ef;
  }
  const out: Tally = new Map();
  for (let i = 0; i < count; i++) {
    const type = nodeTypes[num(nodes, i * nf + iType)];
    const what = type === 'object' ? strings[num(nodes, i * nf + iName)] : type;
    const o = num(owner, i);
    const key = `${what} <- ${o >= 0 ? strings[num(nodes, o * nf + iName)] : '?'}.${via[i] ?? ''}`.slice(0, 100);
    const t = out.get(key) ?? { count: 0, bytes: 0 };
    t.count++;
    t.bytes += num(nodes, i * nf + iSize);
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
