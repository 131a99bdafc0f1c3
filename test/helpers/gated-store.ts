/**
 * A view of a store whose calls of one method can be made to wait at a gate
 * (to widen a race on purpose), and which counts the calls of every method.
 */
import type { SessionStore } from '../../server/index.js';
import { Condition } from './server.js';

export interface GatedStore {
  /** The view to give the server. */
  readonly store: SessionStore;
  /** From now on, calls of the gated method wait until open(). */
  hold(): void;
  /** Let the waiting calls (and later ones) through. */
  open(): void;
  /** Notified whenever a call starts waiting at the gate. */
  readonly waiting: Condition;
  /** Calls that have waited at the gate so far. */
  count(): number;
  /** Calls of `method` made through the view so far. */
  calls(method: keyof SessionStore): number;
}

export function gated(store: SessionStore, method: keyof SessionStore): GatedStore {
  let held = false;
  let waiting = 0;
  let release: () => void = () => undefined;
  let gate = Promise.resolve();
  const cond = new Condition();
  const calls = new Map<PropertyKey, number>();
  const view = new Proxy(store, {
    get(target, prop, receiver) {
      const v: unknown = Reflect.get(target, prop, receiver);
      if (typeof v !== 'function') return v;
      if (prop !== method) {
        return (...args: unknown[]) => {
          calls.set(prop, (calls.get(prop) ?? 0) + 1);
          return Reflect.apply(v, target, args) as unknown;
        };
      }
      return async (...args: unknown[]) => {
        calls.set(prop, (calls.get(prop) ?? 0) + 1);
        if (held) {
          waiting++;
          cond.notify();
          await gate;
        }
        return Reflect.apply(v, target, args) as unknown;
      };
    },
  });
  return {
    store: view,
    hold() {
      held = true;
      gate = new Promise<void>((r) => (release = r));
    },
    open() {
      held = false;
      release();
    },
    waiting: cond,
    count: () => waiting,
    calls: (m) => calls.get(m) ?? 0,
  };
}
