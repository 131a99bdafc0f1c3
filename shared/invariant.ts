/**
 * Checks for things Holdline's own bookkeeping guarantees (an index below a
 * length it keeps, a key it set itself). With `noUncheckedIndexedAccess` such a
 * read is `T | undefined`; these helpers turn "cannot happen" into a clear
 * error instead of a cast or a `!` that would let `undefined` flow on.
 * Internal: not exported from `holdline/protocol`.
 */
import { HoldlineError } from './errors.js';

function broken(what: string): HoldlineError {
  return new HoldlineError('internal_error', `Holdline internal error: ${what} (this is a bug in Holdline)`);
}

/** `list[i]`, which the caller knows exists; throws internal_error naming `what` if it does not. */
export function at<T>(list: ArrayLike<T>, i: number, what: string): T {
  const value = list[i];
  if (value === undefined) throw broken(`${what}: no element at index ${i} of ${list.length}`);
  return value;
}

/** `value`, which the caller knows is set; throws internal_error naming `what` if it is not. */
export function defined<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw broken(`${what} is missing`);
  return value;
}
