/**
 * The batches a WebSocket connection (websocket-connection.ts) has sent and
 * the client has not yet acknowledged. The connection sends no further ahead
 * of the client's acks than the transport's window (a batch, or half the
 * session's queue): 'flush' then means what it means on polling, and an
 * application pacing itself by it is paced by the client.
 */
export class SentWindow {
  /** [last seq, wire bytes] per batch, oldest first. */
  readonly #batches: Array<[number, number]> = [];
  #bytes = 0;

  /** `max` bytes or more are unacknowledged: nothing more goes until an ack. */
  full(max: number): boolean {
    return this.#bytes >= max;
  }

  /** A batch up to `last`, `bytes` on the wire, was sent. */
  sent(last: number, bytes: number): void {
    this.#batches.push([last, bytes]);
    this.#bytes += bytes;
  }

  /** The client has everything up to `ack`. True if that reopened a window that was full: the connection has something to pump for. */
  acked(ack: number, max: number): boolean {
    const wasFull = this.#bytes >= max;
    for (let b = this.#batches[0]; b !== undefined && b[0] <= ack; b = this.#batches[0]) {
      this.#batches.shift();
      this.#bytes -= b[1];
    }
    return wasFull && this.#bytes < max;
  }
}
