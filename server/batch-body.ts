/**
 * A poll answer's body, `{"ack":A,"seq":S,"m":[…]}`, made from a batch read
 * from the store. A large batch whose JSON is ASCII (its UTF-8 size equals
 * its length, as for most text) becomes bytes here: the envelope and `m`
 * copied byte for byte into one buffer, without UTF-8 encoding and without
 * first joining them into one string (on the bench machine, for 100 KB:
 * about 9 us, against 26 us through one latin1 string and 41 us through UTF-8).
 * Anything else stays text, for the HTTP layer to encode.
 */
import { encodeBatch } from '../shared/index.js';
import type { ReadOutboundResult } from './store.js';

/** Smaller bodies go as text: the socket writes those as cheaply. */
const BYTES_AT = 4096;
const CLOSE_BRACE = 0x7d;

export function batchBody(b: ReadOutboundResult): string | Buffer {
  const { m } = b;
  if (m.length < BYTES_AT || b.wireBytes !== m.length) return encodeBatch(b.inboundAck, b.seq, m);
  const head = encodeBatch(b.inboundAck, b.seq, '');
  // head ends with "}", the envelope's close, which goes after m instead.
  const open = head.length - 1;
  const body = Buffer.allocUnsafe(open + m.length + 1);
  body.write(head, 0, open, 'latin1');
  body.write(m, open, 'latin1');
  body[body.length - 1] = CLOSE_BRACE;
  return body;
}
