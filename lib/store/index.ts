export { MemoryStore, type MemoryStoreOptions } from './memory-store';
export { RedisStore, DEFAULT_KEY_PREFIX, type RedisStoreOptions } from './redis-store';
