import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Backoff } from './backoff.js';

const low = () => 0;
const high = () => 1 - Number.EPSILON;

describe('Backoff', () => {
  it('starts at minDelayMs and doubles each attempt (upper end of the jitter)', () => {
    const b = new Backoff(100, 100_000);
    const delays = Array.from({ length: 6 }, () => b.next(high));
    assert.deepEqual(delays, [100, 200, 400, 800, 1600, 3200]);
  });

  it('lower end of the jitter is half the base', () => {
    const b = new Backoff(100, 100_000);
    assert.deepEqual(Array.from({ length: 5 }, () => b.next(low)), [50, 100, 200, 400, 800]);
  });

  it('is capped at maxDelayMs, and stays capped however many attempts', () => {
    const b = new Backoff(250, 10_000);
    const delays: number[] = [];
    for (let i = 0; i < 200; i++) delays.push(b.next(high));
    assert.equal(Math.max(...delays), 10_000);
    assert.deepEqual(delays.slice(6, 12), [10_000, 10_000, 10_000, 10_000, 10_000, 10_000]);
    assert.equal(delays[199], 10_000, 'no overflow to Infinity or NaN after many attempts');
    assert.ok(delays.every((d) => Number.isFinite(d)));
  });

  it('jitter stays within [base/2, base] for any random value', () => {
    let seed = 42;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x80000000;
    };
    const ranges: [min: number, max: number][] = [[250, 10_000], [1, 1], [3, 7], [1000, 1000], [5, 1_000_000]];
    for (const [min, max] of ranges) {
      const b = new Backoff(min, max);
      for (let attempt = 0; attempt < 40; attempt++) {
        const base = Math.min(max, min * 2 ** attempt);
        const d = b.next(rand);
        assert.ok(Number.isInteger(d), `delay ${d} is whole milliseconds`);
        assert.ok(d >= base / 2 && d <= base, `attempt ${attempt}: ${d} not in [${base / 2}, ${base}] (min ${min}, max ${max})`);
      }
    }
  });

  it('spreads clients out: different random values give different delays', () => {
    const third = new Set<number>();
    for (const r of [0, 0.25, 0.5, 0.75, 0.99]) {
      const b = new Backoff(1000, 60_000);
      b.next(() => r);
      b.next(() => r);
      third.add(b.next(() => r));
    }
    assert.deepEqual([...third], [2000, 2500, 3000, 3500, 3980]);
  });

  it('counts attempts, and reset() starts again from minDelayMs', () => {
    const b = new Backoff(100, 100_000);
    assert.equal(b.attempt, 0);
    b.next(high);
    b.next(high);
    b.next(high);
    assert.equal(b.attempt, 3);
    b.reset();
    assert.equal(b.attempt, 0);
    assert.equal(b.next(high), 100);
  });

  it('uses Math.random by default, within bounds', () => {
    const b = new Backoff(100, 1000);
    for (let i = 0; i < 50; i++) {
      const d = b.next();
      assert.ok(d >= 50 && d <= 1000, String(d));
    }
  });
});
