import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeCompact, encodeCompact, isCompact } from './compact-frame.js';

test('a compact frame carries the ack, the seq and the text, whatever the text holds', () => {
  for (const text of ['hello', '', ']', '[1,2]x', 'é€😀', '{"ack":1}', 'a\nb']) {
    const f = encodeCompact(7, 42, text);
    assert.ok(isCompact(f));
    assert.deepEqual(decodeCompact(f), { ack: 7, seq: 42, text, at: f.length - text.length });
  }
  assert.deepEqual(decodeCompact(encodeCompact(0, 1, 'x')), { ack: 0, seq: 1, text: 'x', at: 5 });
  assert.equal(decodeCompact(encodeCompact(2 ** 53 - 1, 2 ** 53 - 1, 'x'))?.seq, 2 ** 53 - 1);
});

test('anything else is not a compact frame', () => {
  const bad = ['{"ack":1}', '', 'x[1,2]', '[1,2', '[1]x', '[,1]x', '[1,]x', '[1,0]x', '[-1,2]x', '[1,+2]x', '[1.5,2]x', '[ 1,2]x', '[1,2 ]x', '[1,a]x', '[99999999999999999,1]x', '[1,99999999999999999]x'];
  for (const f of bad) assert.equal(decodeCompact(f), undefined, JSON.stringify(f));
  assert.equal(isCompact('{"ack":1}'), false);
});
