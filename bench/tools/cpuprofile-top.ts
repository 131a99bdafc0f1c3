/**
 * Summarise a V8 .cpuprofile (from `--cpu-prof`, e.g. `bench/run.ts --cpu-prof=DIR`):
 * the functions with the most self time, and self time per file.
 *
 *   npx tsx bench/tools/cpuprofile-top.ts FILE.cpuprofile [--top=25] [--filter=TEXT] [--last=MS] [--skip-last=MS]
 *
 * --last=MS counts only the samples of the profile's last MS milliseconds
 * (e.g. the measured phase, after start-up and connection set-up).
 * --skip-last=MS leaves out the profile's last MS milliseconds (with --last,
 * the window ends that much before the end: one phase of several).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string' }, filter: { type: 'string' }, last: { type: 'string' }, 'skip-last': { type: 'string' } } });
const top = Number(values.top ?? 25);
for (const file of positionals) {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  const to = p.endTime - Number(values['skip-last'] ?? 0) * 1000;
  const from = values.last === undefined ? -Infinity : to - Number(values.last) * 1000;
  let at = p.startTime;
  p.samples.forEach((id, i) => {
    at += p.timeDeltas[i] ?? 0;
    if (at >= from && at <= to) self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0));
  });
  const total = (to - Math.max(p.startTime, from)) / 1000;
  const fn = new Map<string, number>();
  const files = new Map<string, number>();
  let busy = 0;
  for (const [id, us] of self) {
    const n = byId.get(id);
    if (!n) continue;
    const f = n.callFrame;
    const short = f.url.replace(/^file:\/\//, '').replace(/^.*\/node_modules\//, 'nm:').replace(/^.*\/work\/main\//, '');
    if (f.functionName !== '(idle)' && f.functionName !== '(program)') busy += us;
    const key = `${f.functionName || '(anonymous)'}  ${short}:${f.lineNumber + 1}`;
    fn.set(key, (fn.get(key) ?? 0) + us);
    const fileKey = short || `(${f.functionName})`;
    files.set(fileKey, (files.get(fileKey) ?? 0) + us);
  }
  const show = (m: Map<string, number>) =>
    [...m]
      .filter(([k]) => !values.filter || k.includes(values.filter))
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, us]) => `  ${(us / 1000).toFixed(1).padStart(8)} ms  ${((us / 1000 / total) * 100).toFixed(1).padStart(5)}%  ${k}`)
      .join('\n');
  console.log(`${file}: ${total.toFixed(0)} ms wall, ${(busy / 1000).toFixed(0)} ms busy (not idle/program)`);
  console.log(`self time by function:\n${show(fn)}\nself time by file:\n${show(files)}\n`);
}
