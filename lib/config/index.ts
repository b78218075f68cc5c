// The configuration's entry point (README: Configuration): validate and resolve a config object, or
// load one from a file. Only re-exports; `ConfigError` and the token warnings have files of their own.
export { loadConfig } from './load';
export { parseDuration } from './durations';
export { resolveConfig } from './resolve';
export { configFingerprint } from './fingerprint';
export { DEFAULT_OAUTH_ALGORITHMS, DEFAULTS } from './resolved-config';
export type {
  RemoteServer,
  ResolvedAggregate,
  ResolvedClaimMatch,
  ResolvedConfig,
  ResolvedLimits,
  ResolvedMember,
  ResolvedOAuth,
  ResolvedPermissions,
  ResolvedPrincipal,
  ResolvedServer,
  StdioServer,
} from './resolved-config';
