/**
 * MemoryStore against the store conformance suite (test/store-conformance/).
 * Two nodes sharing one MemoryStore are two node ids calling the same object,
 * so the second handle is the store itself.
 */
import { MemoryStore } from '../server/index.js';
import { storeConformance } from './store-conformance/index.js';

storeConformance('MemoryStore', () => new MemoryStore());
