/**
 * Holds (server/poll-holds.ts) keeps a Map's semantics, one Hold per session
 * id, wherever it keeps a Hold: in the session while this node owns it,
 * else by id. A poll held across a change of owner must still be found.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Hold } from './poll-hold.js';
import { Holds, type HoldOwner } from './poll-holds.js';

/** A node's owned sessions, as the registry gives them. */
function owners(): { live: Map<string, HoldOwner>; holds: Holds } {
  const live = new Map<string, HoldOwner>();
  const holds = new Holds({ owned: (sid) => live.get(sid), sessions: () => live.values() });
  return { live, holds };
}

function all(holds: Holds): Array<[string, Hold]> {
  const out: Array<[string, Hold]> = [];
  holds.forEach((h, sid) => out.push([sid, h]));
  return out.sort((a, b) => a[0].localeCompare(b[0]));
}

test('an owned session keeps its Hold in itself; any other session by its id', () => {
  const { live, holds } = owners();
  const mine: HoldOwner = { id: 'a', transportSlot: undefined };
  live.set('a', mine);
  const ha = new Hold();
  const hb = new Hold();
  holds.set('a', ha);
  holds.set('b', hb);
  assert.equal(mine.transportSlot, ha);
  assert.equal(holds.get('a'), ha);
  assert.equal(holds.get('b'), hb);
  assert.deepEqual(all(holds), [['a', ha], ['b', hb]]);
  holds.delete('a');
  holds.delete('b');
  assert.equal(mine.transportSlot, undefined);
  assert.equal(holds.get('a'), undefined);
  assert.equal(holds.get('b'), undefined);
  assert.deepEqual(all(holds), []);
});

test('a Hold follows its session: taken over (own), then ended or handed over (disown)', () => {
  const { live, holds } = owners();
  const h = new Hold();
  holds.set('s', h); // a poll held here for a session another node owns
  const s: HoldOwner = { id: 's', transportSlot: undefined };
  live.set('s', s);
  holds.own(s); // this node takes it over
  assert.equal(s.transportSlot, h);
  assert.deepEqual(all(holds), [['s', h]], 'one Hold, not one in the session and one by id');
  holds.disown(s); // it ends here: the registry forgets it next
  live.delete('s');
  assert.equal(s.transportSlot, undefined);
  assert.equal(holds.get('s'), h, 'the held poll is still found by its id');
  assert.deepEqual(all(holds), [['s', h]]);
  holds.delete('s');
  assert.deepEqual(all(holds), []);
});
