/**
 * `holdline doctor URL`: the command slot for client/doctor.ts (which
 * diagnoses the path to a server: proxy, TLS, holds, WebSocket). The
 * diagnosis is loaded only when this command runs, and only if the package
 * has it.
 *
 * The contract client/doctor.ts is expected to meet: export
 * `diagnose(url, { proxy?, log })`, where `log(line)` prints a line of
 * progress, resolving to a report that is printed (a string as it is, an
 * object as JSON) and whose `ok: false` makes the exit code 1.
 */
import { CLIENT_FLAGS, CLIENT_FLAGS_HELP, clientOptions } from '../client-flags.js';
import { line, parse, urlArg, type Command } from '../command.js';

const help = `Usage: holdline doctor URL [options]

Diagnoses the path from here to the Holdline server at URL: what is in the
way (proxies, TLS interception, connection cuts) and what to change.

  --json         print the report as JSON

${CLIENT_FLAGS_HELP}`;

type Diagnose = (url: string, options: Record<string, unknown>) => Promise<unknown>;

/** The diagnosis function, or undefined when this build has none. */
async function loadDiagnose(): Promise<Diagnose | undefined> {
  // A variable specifier: the module is optional, and typechecking must not need it.
  const specifier = '../../client/doctor.js';
  let mod: Record<string, unknown>;
  try {
    mod = (await import(specifier)) as Record<string, unknown>;
  } catch (e) {
    if ((e as { code?: string }).code === 'ERR_MODULE_NOT_FOUND') return undefined;
    throw e;
  }
  const fn = mod.diagnose ?? mod.doctor ?? mod.default;
  return typeof fn === 'function' ? (fn as Diagnose) : undefined;
}

export const command: Command = {
  summary: 'diagnose the path (proxies, cuts, TLS) to a server',
  help,
  async run(args, io) {
    const { values, positionals } = parse(args, { ...CLIENT_FLAGS, json: { type: 'boolean' } });
    const url = urlArg(positionals);
    const options = clientOptions(values);
    const diagnose = await loadDiagnose();
    if (!diagnose) {
      line(io.stderr, 'holdline doctor: this build of holdline has no diagnosis (client/doctor.js); try holdline bench URL');
      return 1;
    }
    const report = await diagnose(url, { ...options, signal: io.signal, log: (text: string) => line(io.stderr, text) });
    if (typeof report === 'string') line(io.stdout, report);
    else if (typeof report === 'object' && report !== null && values.json !== true) line(io.stdout, describe(report));
    else if (report !== undefined) line(io.stdout, JSON.stringify(report, null, 2));
    return (report as { ok?: unknown } | undefined)?.ok === false ? 1 : 0;
  },
};

/** A report object as text: its own toString() if it has one, else JSON. */
function describe(report: object): string {
  const s = String(report);
  return s === '[object Object]' ? JSON.stringify(report, null, 2) : s;
}
