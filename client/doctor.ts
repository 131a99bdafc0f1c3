/**
 * The `holdline doctor URL` entry (cli/commands/doctor.ts loads it when the
 * command runs): `diagnose(url, { proxy?, log, ... })` resolving to the
 * report of client/node/doctor.ts, printed by its toString(), with `ok`
 * false (exit code 1) when no session could be opened through the path.
 * Node only (the browser entry never reaches it).
 */
import type { ProxySetting } from './options.js';
import { diagnose as diagnosePath, type DiagnosisReport } from './node/doctor.js';

export type { DiagnosisReport } from './node/doctor.js';

export interface DoctorReport extends DiagnosisReport {
  ok: boolean;
  toString(): string;
}

export async function diagnose(url: string, options: { proxy?: ProxySetting; log?: (line: string) => void; maxHoldMs?: number } = {}): Promise<DoctorReport> {
  const { report, text } = await diagnosePath(url, {
    ...(options.proxy === undefined ? {} : { proxy: options.proxy }),
    ...(options.log === undefined ? {} : { log: options.log }),
    ...(options.maxHoldMs === undefined ? {} : { maxHoldMs: options.maxHoldMs }),
  });
  return { ...report, ok: report.session.opened, toString: () => text };
}
