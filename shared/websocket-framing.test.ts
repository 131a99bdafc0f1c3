import { test } from 'node:test';
import assert from 'node:assert/strict';
import { batchFrames, decodeCompact, encodeCompact, isCompact } from './websocket-framing.js';

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

test('a batch as frames: one compact frame for one text message to a peer that reads them, else the header and a frame per message', () => {
  assert.deepEqual(batchFrames(3, 7, ['hi'], true), ['[3,7]hi']);
  assert.deepEqual(batchFrames(3, 7, ['hi'], false), ['{"ack":3,"seq":7,"n":1}', 'hi'], 'a peer that did not say it reads them');
  assert.deepEqual(batchFrames(3, 7, ['a', 'b'], true), ['{"ack":3,"seq":7,"n":2}', 'a', 'b'], 'two messages');
  assert.deepEqual(batchFrames(0, 1, [{ b: 'AAEC/w==' }], true), ['{"ack":0,"seq":1,"n":1}', new Uint8Array([0, 1, 2, 255])], 'binary: its bytes, never compact');
  assert.deepEqual(batchFrames(0, 1, [{ r: '{"q":1}' }], true), ['{"ack":0,"seq":1,"n":1,"r":[0]}', '{"q":1}'], 'a request frame: never compact');
  assert.deepEqual(batchFrames(5, 2, ['x', { r: 'R1' }, { b: '' }, { r: 'R2' }], false), ['{"ack":5,"seq":2,"n":4,"r":[1,3]}', 'x', 'R1', new Uint8Array(0), 'R2']);
});
