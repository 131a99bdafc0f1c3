/**
 * How a batch goes on the WebSocket (PROTOCOL.md, "WebSocket"), the same on
 * both ends: a header frame `{"ack","seq","n"}` (with `"r"`, the indexes of
 * request and reply frames) and a frame per message, text as text and
 * binary as bytes; or, for a batch of one text message to a peer that said
 * it reads them, one compact frame, `[ack,seq]` in front of the text.
 *
 * The compact frame exists because a header and its message frame cost a
 * frame each way and a parse on each end, and most batches of an
 * interactive session (an echo, a chat line, a reply) are one text message.
 * Either end sends compact frames only to a peer that said it reads them
 * (`"f":1` in the hello and in its answer).
 */
import { fromWire, isRpcWire, type WirePayload } from './payload.js';

/** The hello's and its answer's field saying "I read compact frames". */
export const COMPACT_FRAMES = 'f';

/**
 * The frames of a batch numbered from `seq`, carrying the sender's
 * cumulative `ack`: one compact frame for one text message when `compact`
 * (the peer reads them), else the header and a frame per message. The
 * first frame carries the ack either way.
 */
export function batchFrames(ack: number, seq: number, wires: readonly WirePayload[], compact: boolean): (string | Uint8Array)[] {
  const only = wires.length === 1 ? wires[0] : undefined;
  if (compact && typeof only === 'string') return [encodeCompact(ack, seq, only)];
  let rpc = '';
  for (let i = 0; i < wires.length; i++) if (isRpcWire(wires[i])) rpc += rpc === '' ? `,"r":[${i}` : `,${i}`;
  const frames: (string | Uint8Array)[] = [`{"ack":${ack},"seq":${seq},"n":${wires.length}${rpc === '' ? '' : `${rpc}]`}}`];
  // The outbox keeps binary in its HTTP form (base64); it goes out as bytes. A request/reply frame is its text.
  for (const w of wires) frames.push(typeof w === 'string' ? w : isRpcWire(w) ? w.r : (fromWire(w) ?? new Uint8Array(0)));
  return frames;
}

/** A compact frame: one text message numbered `seq`, with the sender's cumulative ack. */
export function encodeCompact(ack: number, seq: number, text: string): string {
  return `[${ack},${seq}]${text}`;
}

export interface CompactBatch {
  ack: number;
  seq: number;
  text: string;
  /** Where the text starts in the frame (its header is ASCII: the text's bytes are the frame's bytes past this). */
  at: number;
}

/** True when `frame` is meant as a compact frame (it starts with `[`; a header starts with `{`). */
export function isCompact(frame: string): boolean {
  return frame.charCodeAt(0) === 0x5b;
}

/**
 * A compact frame's parts, or undefined when it is not well formed: `[`,
 * the ack (decimal digits), `,`, the seq (decimal digits, at least 1), `]`,
 * then the text (anything, empty included).
 */
export function decodeCompact(frame: string): CompactBatch | undefined {
  if (!isCompact(frame)) return undefined;
  const comma = frame.indexOf(',');
  if (comma < 0) return undefined;
  const end = frame.indexOf(']', comma);
  if (end < 0) return undefined;
  const ack = count(frame, 1, comma);
  const seq = count(frame, comma + 1, end);
  if (ack === undefined || seq === undefined || seq < 1) return undefined;
  return { ack, seq, text: frame.slice(end + 1), at: end + 1 };
}

/** The non-negative safe integer written in decimal digits from `from` to `to`, else undefined. */
function count(s: string, from: number, to: number): number | undefined {
  if (to <= from || to - from > 16) return undefined;
  let n = 0;
  for (let i = from; i < to; i++) {
    const d = s.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return undefined;
    n = n * 10 + d;
  }
  return Number.isSafeInteger(n) ? n : undefined;
}
