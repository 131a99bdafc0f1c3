/**
 * PROTOCOL.md and the code say the same thing about errors, code by code:
 * the "Errors" table's status and client reaction against WIRE_ERRORS and
 * shared/reaction.ts, the status-only table against STATUS_CODES, and the
 * close-frame table against CLOSE_REACTIONS. Changing one without the other
 * fails here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { WIRE_ERRORS, isWireErrorCode, type ErrorCode } from '../shared/errors.js';
import { CLOSE_REACTIONS, OPEN_STATUS_CODES, STATUS_CODES, WIRE_REACTIONS, closeReactionOf, reactionOf, type Reaction } from '../shared/reaction.js';

const DOC = readFileSync(new URL('../PROTOCOL.md', import.meta.url), 'utf8');

/** How the document words each reaction (after the notes are taken off, see reactionIn). */
const WORDS: { readonly [R in Reaction]: string } = {
  retry: 'retry with back-off',
  new_session: 'new session',
  stop: 'stop',
  fatal: 'fatal',
  smaller_batches: 'send in smaller batches',
};

/** The reaction a table cell names: notes in parentheses, a "bug:" label and what follows a ";" are not part of it. */
function reactionIn(cell: string): Reaction | undefined {
  const words = cell
    .replace(/\([^)]*\)/g, '')
    .replace(/^bug:\s*/, '')
    .replace(/;.*$/, '')
    .replace(/^open a /, '')
    .trim();
  return (Object.keys(WORDS) as Reaction[]).find((r) => WORDS[r] === words);
}

/** The rows of the first table after `heading` whose header row starts with `firstColumn`, as cells. */
function table(heading: string, firstColumn: string): string[][] {
  const start = DOC.indexOf(heading);
  assert.ok(start >= 0, `PROTOCOL.md has "${heading}"`);
  const lines = DOC.slice(start).split('\n');
  const head = lines.findIndex((l) => new RegExp(`^\\|\\s*${firstColumn}\\s*\\|`).test(l));
  assert.ok(head >= 0, `a table with a "${firstColumn}" column after "${heading}"`);
  const rows: string[][] = [];
  for (const line of lines.slice(head + 2)) {
    if (!line.startsWith('|')) break;
    rows.push(line.slice(1, -1).split('|').map((c) => c.trim()));
  }
  assert.ok(rows.length > 0);
  return rows;
}

const code = (cell: string | undefined): string => (cell ?? '').replace(/`/g, '');

test('the Errors table lists every wire error code once, with its status and the client reaction the code has', () => {
  const rows = table('## Errors', 'status');
  const seen = new Set<string>();
  for (const [status, cell, , reaction] of rows) {
    const c = code(cell);
    assert.ok(isWireErrorCode(c), `PROTOCOL.md lists ${c}, which WIRE_ERRORS does not have`);
    assert.ok(!seen.has(c), `${c} is listed twice`);
    seen.add(c);
    assert.equal(Number(status), WIRE_ERRORS[c].status, `${c}: status`);
    assert.equal(reactionIn(reaction ?? ''), WIRE_REACTIONS[c], `${c}: the doc says "${reaction}", shared/reaction.ts says ${WIRE_REACTIONS[c]}`);
  }
  assert.deepEqual([...seen].sort(), Object.keys(WIRE_ERRORS).sort(), 'every wire error code is documented');
});

test('the status-only table (a body that is not ours) matches STATUS_CODES and the reactions', () => {
  const rows = table('When the body is not a Holdline error body', 'status');
  const documented = new Map<number, string>();
  for (const [status, cell, reaction] of rows) {
    const c = code(cell) as ErrorCode;
    assert.equal(reactionIn(reaction ?? ''), reactionOf(c), `${status} -> ${c}: the doc says "${reaction}"`);
    if (status === 'any other') {
      assert.equal(c, 'bad_response');
      continue;
    }
    documented.set(Number(status), c);
  }
  assert.deepEqual(
    [...documented].sort(([a], [b]) => a - b),
    Object.entries(STATUS_CODES).map(([s, c]): [number, string] => [Number(s), c]).sort(([a], [b]) => a - b),
  );
  assert.ok(rows.some(([status]) => status === 'any other'), 'the table says what any other status is');
});

test('on /open a bare 404 is not_found and fatal, as the document says', () => {
  assert.equal(OPEN_STATUS_CODES[404], 'not_found');
  assert.equal(reactionOf('not_found'), 'fatal');
  assert.match(DOC, /On `\/open` there is no session yet[^]*?`404`[^]*?taken as `not_found`, and is fatal/);
  // Every other status means the same on /open as anywhere.
  for (const [status, c] of Object.entries(STATUS_CODES)) if (status !== '404') assert.equal(OPEN_STATUS_CODES[Number(status)], c);
});

test('the client-code table matches reactionOf', () => {
  const rows = table('Those a request can fail with', 'client code');
  for (const [cell, , reaction] of rows) {
    const c = code(cell) as ErrorCode;
    assert.ok(!isWireErrorCode(c), `${c} is a client-side code`);
    assert.equal(reactionIn(reaction ?? ''), reactionOf(c), `${c}: the doc says "${reaction}"`);
  }
  const listed = rows.map(([cell]) => code(cell));
  for (const c of ['network_error', 'timeout', 'bad_response', 'proxy_auth_required', 'proxy_refused']) assert.ok(listed.includes(c), `${c} is in the table`);
});

test('the close frame table matches CLOSE_REACTIONS', () => {
  const rows = table('**Close frame.**', 'close code');
  for (const [cell, , reaction] of rows) {
    const c = code(cell);
    assert.ok(Object.hasOwn(CLOSE_REACTIONS, c), `PROTOCOL.md lists close code ${c}, which CloseCode does not have`);
    assert.equal(reactionIn(reaction ?? ''), closeReactionOf(c), `${c}: the doc says "${reaction}"`);
  }
  assert.equal(closeReactionOf('a_code_from_the_future'), 'stop');
  assert.match(DOC, /A client treats a close code it does not know as `stop`/);
  // Every close code a server sends is listed (transport_error is the client's own, never on the wire).
  const listed = rows.map(([cell]) => code(cell));
  for (const c of Object.keys(CLOSE_REACTIONS)) if (c !== 'transport_error') assert.ok(listed.includes(c), `close code ${c} is in the table`);
});

test('reactionIn reads the wordings in use and nothing else', () => {
  assert.equal(reactionIn('bug: new session'), 'new_session');
  assert.equal(reactionIn('new session (`reset`)'), 'new_session');
  assert.equal(reactionIn('stop; report the reason'), 'stop');
  assert.equal(reactionIn('open a new session (`reset`)'), 'new_session');
  assert.equal(reactionIn('—'), undefined);
  assert.equal(reactionIn('retry'), undefined);
});
