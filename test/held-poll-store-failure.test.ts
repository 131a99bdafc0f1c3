/**
 * A held poll whose batch the store cannot give (its calls fail): at the
 * end of its hold it is answered with an empty batch, not held until the
 * client's deadline (the client would count a lost poll, and go
 * `reconnecting`). The failure is reported as an 'error' of the server.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { MemoryStore } from '../server/index.js';
import { Cleanup, openRaw, post, startServer, withTimeout } from './helpers/server.js';
import { killable } from './multi-node/helpers.js';

describe('a held poll whose batch the store cannot give', () => {
  const cleanup = new Cleanup();
  after(() => cleanup.run());

  it('is answered empty at the end of its hold, not held until the client gives up', async () => {
    const cut = killable(new MemoryStore());
    const h = await startServer({ store: cut.store, pollTimeoutMs: 1_000 });
    cleanup.add(() => h.close());
    const errors: unknown[] = [];
    h.hl.on('error', (e) => errors.push(e));
    const s = await openRaw(h.url);
    const held = post(`${h.url}/poll`, JSON.stringify({ sid: s.sid, token: s.token, ack: 0 }));
    await new Promise((r) => setTimeout(r, 100));
    cut.kill();
    const answer = await withTimeout(held, 5_000, 'the held poll answered at the end of its hold (1 s)');
    assert.equal(answer.status, 200);
    assert.deepEqual(JSON.parse(answer.text), { ack: 0, seq: 0, m: [] }, 'an empty batch, its ack 0 (the client ignores an ack below its own)');
    assert.ok(errors.some((e) => e instanceof Error && e.message === 'store connection lost'), 'the store failure reported');
  });
});
