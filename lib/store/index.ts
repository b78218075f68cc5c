// Counter stores (README: Running several instances): the default in memory, and Redis.
export { MemoryStore } from './memory-store';
export { RedisStore, DEFAULT_KEY_PREFIX } from './redis-store';
