import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TypedEmitter } from './emitter.js';

interface Events {
  a: (n: number) => void;
  b: (s: string) => void;
  c: () => void;
}
class E extends TypedEmitter<Events> {
  fire<K extends keyof Events>(event: K, ...args: Parameters<Events[K]>): boolean {
    return this.emit(event, ...args);
  }
}

describe('TypedEmitter', () => {
  it('calls listeners in the order they were added, per event, with the arguments', () => {
    const e = new E();
    const got: string[] = [];
    assert.equal(e.fire('a', 1), false, 'no listener: emit returns false');
    e.on('a', (n) => got.push(`a1:${n}`));
    e.on('b', (s) => got.push(`b1:${s}`));
    e.on('a', (n) => got.push(`a2:${n}`));
    e.on('a', (n) => got.push(`a3:${n}`));
    assert.equal(e.fire('a', 7), true);
    assert.equal(e.fire('b', 'x'), true);
    assert.equal(e.fire('c'), false);
    assert.deepEqual(got, ['a1:7', 'a2:7', 'a3:7', 'b1:x']);
    assert.equal(e.listenerCount('a'), 3);
    assert.equal(e.listenerCount('b'), 1);
    assert.equal(e.listenerCount('c'), 0);
  });

  it('off removes one listener (first match) from one event, down to none and back', () => {
    const e = new E();
    const got: number[] = [];
    const f1 = (n: number) => got.push(n * 1);
    const f2 = (n: number) => got.push(n * 10);
    const fb = () => got.push(-1);
    e.on('a', f1).on('c', fb).on('a', f2).on('a', f1);
    e.off('a', f1);
    e.fire('a', 2);
    assert.deepEqual(got, [20, 2], 'the first f1 went, f2 and the second f1 stay in order');
    e.off('a', f2).off('a', f2).off('b', f1 as never);
    assert.equal(e.listenerCount('a'), 1);
    e.off('a', f1);
    assert.equal(e.listenerCount('a'), 0);
    assert.equal(e.fire('a', 3), false);
    e.fire('c');
    assert.deepEqual(got, [20, 2, -1], 'other events are untouched');
    e.off('c', fb);
    assert.equal(e.fire('c'), false);
    e.on('a', f2);
    e.fire('a', 4);
    assert.deepEqual(got, [20, 2, -1, 40]);
  });

  it('once fires one time; a listener removed during emit still runs for that emit (copy on write)', () => {
    const e = new E();
    const got: string[] = [];
    e.once('b', (s) => got.push(`once:${s}`));
    const late = (s: string) => got.push(`late:${s}`);
    e.on('b', (s) => {
      got.push(`first:${s}`);
      e.off('b', late);
    });
    e.on('b', late);
    e.fire('b', 'x');
    e.fire('b', 'y');
    assert.deepEqual(got, ['once:x', 'first:x', 'late:x', 'first:y']);
  });

  it('addListener and removeListener are aliases', () => {
    const e = new E();
    let n = 0;
    const f = () => n++;
    e.addListener('c', f);
    e.fire('c');
    e.removeListener('c', f);
    e.fire('c');
    assert.equal(n, 1);
  });
});
