/**
 * MemoryStore against the store conformance suite (test/store-conformance.ts).
 * Two nodes sharing one MemoryStore are two node ids calling the same object,
 * so the second handle is the store itself.
 */
import { MemoryStore } from '../server/index.js';
import { storeConformance } from './store-conformance.js';

storeConformance('MemoryStore', () => new MemoryStore(), {
  known: {
    'two nodes create sessions for one retried open at once: findByAttempt finds one, and dropping the other does not lose it':
      "MemoryStore: the second create() takes the attempt over, and delete()/forgetAttempt() of the first then drops the attempt of the second (it removes #attempts[attempt] without checking it still names this sid)",
  },
});
