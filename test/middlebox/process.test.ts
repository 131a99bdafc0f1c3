/**
 * bounded(): a hook's step that never settles fails within its bound, naming
 * the step, instead of holding the test file until the runner's file timeout.
 * cleanUp() runs every step even after one fails, and names what failed.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cleanUp } from './harness.js';
import { bounded } from './process.js';

describe('bounded steps', () => {
  it('give the value of a step that settles in time, and its error', async () => {
    assert.equal(await bounded('a quick step', Promise.resolve(7), 1_000), 7);
    await assert.rejects(bounded('a failing step', Promise.reject(new Error('boom')), 1_000), { message: 'boom' });
  });

  it('fail a step that never settles with MIDDLEBOX_WAIT_TIMEOUT naming it, after the bound', async () => {
    const started = Date.now();
    await assert.rejects(bounded('stopping squid', new Promise<never>(() => undefined), 200), {
      name: 'MiddleboxError',
      code: 'MIDDLEBOX_WAIT_TIMEOUT',
      message: 'stopping squid did not finish within 200 ms',
    });
    assert.ok(Date.now() - started >= 190, `gave up after ${Date.now() - started} ms`);
  });

  it('clean-up: every step runs after one fails; the error names the failed step', async () => {
    const ran: string[] = [];
    await assert.rejects(
      cleanUp([
        ['stopping a daemon', () => (ran.push('daemon'), Promise.reject(new Error('daemon would not stop')))],
        ['closing nothing', () => (ran.push('nothing'), undefined)],
        ['closing the origin', () => (ran.push('origin'), Promise.resolve())],
      ]),
      { message: 'daemon would not stop' },
    );
    assert.deepEqual(ran, ['daemon', 'nothing', 'origin']);
    const both = await cleanUp([
      ['step one', () => Promise.reject(new Error('one'))],
      ['step two', () => {
        throw new Error('two');
      }],
    ]).then(
      () => undefined,
      (error: unknown) => error,
    );
    assert.ok(both instanceof AggregateError);
    assert.deepEqual(both.errors.map((e: Error) => e.message), ['one', 'two']);
  });
});
