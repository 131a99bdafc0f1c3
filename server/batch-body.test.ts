import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { encodeBatch, Outbox } from '../shared/index.js';
import { batchBody } from './batch-body.js';
import type { ReadOutboundResult } from './store.js';

function read(messages: string[], inboundAck = 7): ReadOutboundResult {
  const o = new Outbox();
  for (const m of messages) o.push(m);
  return { ...o.batch(1e9), inboundAck };
}

const text = (body: string | Buffer) => (typeof body === 'string' ? body : body.toString('utf8'));

describe('batchBody', () => {
  it('makes a large ASCII batch bytes, equal to the JSON text', () => {
    const b = read(Array.from({ length: 100 }, (_, i) => `message ${i} ${'x'.repeat(90)}`));
    const body = batchBody(b);
    assert.ok(Buffer.isBuffer(body));
    assert.equal(text(body), encodeBatch(7, 1, b.m));
    assert.deepEqual(JSON.parse(text(body)).m[99], `message 99 ${'x'.repeat(90)}`);
  });

  it('makes a large batch with JSON escapes bytes too (escaped JSON is ASCII), equal to the JSON text', () => {
    for (const odd of ['quote " and backslash \\', 'tab\there', 'lone \ud800 surrogate']) {
      const b = read([...Array.from({ length: 60 }, () => 'y'.repeat(100)), odd]);
      const body = batchBody(b);
      assert.ok(Buffer.isBuffer(body), odd);
      assert.equal(text(body), encodeBatch(7, 1, b.m));
      assert.equal(JSON.parse(text(body)).m[60], odd);
    }
  });

  it('keeps a large batch with non-ASCII text as text (the HTTP layer encodes it to UTF-8)', () => {
    for (const odd of ['caf\u00e9', 'emoji \u{1F600}']) {
      const b = read([...Array.from({ length: 60 }, () => 'y'.repeat(100)), odd]);
      const body = batchBody(b);
      assert.equal(typeof body, 'string', odd);
      assert.equal(body, encodeBatch(7, 1, b.m));
      assert.equal(JSON.parse(body as string).m[60], odd);
    }
  });

  it('keeps a small batch as text', () => {
    const b = read(['a', 'b']);
    assert.equal(batchBody(b), '{"ack":7,"seq":1,"m":["a","b"]}');
  });

  it('carries binary payloads (base64 inside) as bytes too', () => {
    const o = new Outbox();
    for (let i = 0; i < 100; i++) o.push(new Uint8Array(80).fill(i));
    const b = { ...o.batch(1e9), inboundAck: 0 };
    const body = batchBody(b);
    assert.ok(Buffer.isBuffer(body));
    const parsed = JSON.parse(text(body)) as { m: { b: string }[] };
    assert.deepEqual(Buffer.from(parsed.m[42]?.b ?? '', 'base64'), Buffer.alloc(80, 42));
  });
});
