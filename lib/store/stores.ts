// The counter store of each configuration (README: Running several instances): created once per
// router and kept across reloads while its settings do not change, so that counts survive them.
import type { ResolvedConfig } from '../config';
import type { CounterStore, Logger } from '../types';
import { MemoryStore } from './memory-store';
import { RedisStore } from './redis-store';

/**
 * The counter store of each config: the caller's (`options.store`), a Redis store for
 * `proxy.store.redis` (kept while its settings do not change), or one memory store for the
 * router's life, so that counts survive reloads.
 */
export class Stores {
  private memory: MemoryStore | undefined;
  private redis: { key: string; store: RedisStore } | undefined;

  constructor(
    private readonly given: CounterStore | undefined,
    private readonly logger: Logger,
  ) {}

  for(config: ResolvedConfig): CounterStore {
    if (this.given) return this.given;
    const redis = config.store?.redis;
    if (redis === undefined) return (this.memory ??= new MemoryStore());
    const key = JSON.stringify([redis.url, redis.keyPrefix]);
    if (this.redis?.key !== key) {
      this.redis = { key, store: new RedisStore({ url: redis.url, keyPrefix: redis.keyPrefix, logger: this.logger }) };
    }
    return this.redis.store;
  }

  /** Closes a store this router made and no longer uses (never the caller's). */
  async retire(store: CounterStore): Promise<void> {
    if (store === this.given || store === this.memory) return;
    if (this.redis?.store === store) this.redis = undefined;
    await store.close?.();
  }
}
