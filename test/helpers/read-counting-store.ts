/**
 * A MemoryStore that counts its reads of the outbound stream (readOutbound:
 * what a poll's answer, a read-ahead or a heartbeat reads and encodes), for
 * tests that show when the server reads and when it does not.
 */
import { MemoryStore } from '../../server/index.js';

export class ReadCountingStore extends MemoryStore {
  reads = 0;

  override readOutbound(sid: string, maxWireBytes: number, from?: number, maxCount?: number) {
    this.reads++;
    return super.readOutbound(sid, maxWireBytes, from, maxCount);
  }
}
