// The `proxy` section as the resolution of the servers sees it (resolve-proxy.ts makes it; the
// servers, permissions and limits refer to its names). Internal to config/.
import type { OAuthNames } from './resolve-oauth';
import type { ResolvedLimits } from './resolved-config';

export interface ResolvedProxy {
  name: string;
  addr: string;
  tokens: Map<string, string>;
  /** Every token name the config defines, even those whose value failed to resolve. */
  tokenNames: string[];
  /** `proxy.auth.oauth` and its principal names (the same namespace as `tokenNames`). */
  oauth: OAuthNames;
  /** Token and principal names: what `authTokens`, `permissions`, `limits` and `metrics` may name. */
  names: string[];
  publicUrl?: string;
  literalTokens: Set<string>;
  maxBodyBytes: number;
  maxEventBytes: number;
  maxBatch: number;
  keepAliveMs: number;
  allowedOrigins: '*' | Set<string> | undefined;
  authThrottle?: { maxFailures: number; windowMs: number };
  instanceId?: string;
  trustProxy: boolean | number | string[];
  store?: { redis: { url: string; keyPrefix: string } };
  drainTimeoutMs: number;
  limits?: Map<string, ResolvedLimits>;
}
