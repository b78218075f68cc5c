export { mcpFront } from './mcp-front';
export { loadConfig } from './config';
export { ConfigError } from './config/config-error';
export type {
  AuthThrottleConfig,
  BearerTokenAuthConfig,
  ConfigProblem,
  CorsConfig,
  Duration,
  EnvRef,
  LogFields,
  Logger,
  McpFrontConfig,
  McpFrontOptions,
  McpFrontRouter,
  ProxyConfig,
  ServerConfig,
  StringOrEnv,
  TransportType,
} from './types';
