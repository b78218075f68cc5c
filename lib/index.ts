export { mcpFront } from './mcp-front';
export { loadConfig } from './config';
export { ConfigError } from './config/config-error';
export { MemoryStore, RedisStore } from './store';
export type {
  AggregateConfig,
  AggregateMemberConfig,
  AuthThrottleConfig,
  BearerTokenAuthConfig,
  ConfigProblem,
  CorsConfig,
  CounterStore,
  CounterWindow,
  Duration,
  EnvRef,
  LogFields,
  Logger,
  McpFrontConfig,
  McpFrontOptions,
  McpFrontRouter,
  MemoryStoreOptions,
  MetricsEndpointConfig,
  MetricsRegistry,
  ProxyConfig,
  RedisClient,
  RedisStoreConfig,
  RedisStoreOptions,
  ServerConfig,
  StoreConfig,
  StringOrEnv,
  TransportType,
  TrustProxy,
} from './types';
