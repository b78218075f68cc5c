// The shape of a configuration file (README: Configuration) as a JSON Schema (draft 2020-12 `$defs`),
// compiled once by ajv. It checks types, unknown keys and enums; resolve.ts checks the rest.
import Ajv from 'ajv';
import type {
  AggregateConfig,
  AggregateMemberConfig,
  McpFrontConfig,
  OAuthConfig,
  OAuthIntrospectionConfig,
  OAuthPrincipalConfig,
  ServerConfig,
  ServerPermissions,
  TokenLimits,
} from '../types';
import { DURATION_PATTERN } from './durations';

const STRING_OR_ENV = { $ref: '#/$defs/stringOrEnv' };
const DURATION = { $ref: '#/$defs/duration' };
const PATTERNS = { type: 'array', items: { type: 'string', minLength: 1 } };
// Scopes, audiences and algorithms: their characters are checked in resolve-oauth.ts.
const STRINGS = { type: 'array', items: { type: 'string' } };
// A claim's value (README: OAuth 2.1): one value, or a non-empty list of alternatives.
const CLAIM_VALUE = { type: ['string', 'number', 'boolean'], minLength: 1 };
const CLAIM_MATCH = { type: ['string', 'number', 'boolean', 'array'], minLength: 1, minItems: 1, items: CLAIM_VALUE };

// `satisfies Record<keyof …>` makes the compiler reject a schema that lacks a key of the public
// type, or has one the type does not: the schema cannot drift from lib/types.ts.
const serverProperties = {
  url: STRING_OR_ENV,
  command: STRING_OR_ENV,
  args: { type: 'array', items: STRING_OR_ENV },
  env: { type: 'object', additionalProperties: STRING_OR_ENV },
  cwd: STRING_OR_ENV,
  headers: { type: 'object', additionalProperties: STRING_OR_ENV },
  transportType: { enum: ['stdio', 'sse', 'streamable-http'] },
  authTokens: { type: 'array', items: { type: 'string' } },
  timeout: DURATION,
  idleTimeout: DURATION,
  maxSessions: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER },
  permissions: {
    type: 'object',
    additionalProperties: {
      type: 'object',
      additionalProperties: false,
      properties: { tools: PATTERNS, prompts: PATTERNS, resources: PATTERNS } satisfies Record<keyof ServerPermissions, object>,
    },
  },
  requiredScopes: STRINGS,
} satisfies Record<keyof ServerConfig, object>;

const oauthProperties = {
  issuer: STRING_OR_ENV,
  audiences: STRINGS,
  scopes: STRINGS,
  jwksUri: STRING_OR_ENV,
  algorithms: STRINGS,
  introspection: {
    type: 'object',
    required: ['clientId', 'clientSecret'],
    additionalProperties: false,
    properties: {
      clientId: STRING_OR_ENV,
      clientSecret: STRING_OR_ENV,
      endpoint: STRING_OR_ENV,
    } satisfies Record<keyof OAuthIntrospectionConfig, object>,
  },
  principals: {
    type: 'object',
    minProperties: 1,
    additionalProperties: {
      type: 'object',
      required: ['claims'],
      additionalProperties: false,
      properties: {
        claims: { type: 'object', minProperties: 1, additionalProperties: CLAIM_MATCH },
      } satisfies Record<keyof OAuthPrincipalConfig, object>,
    },
  },
} satisfies Record<keyof OAuthConfig, object>;

const proxyProperties = {
  name: { type: 'string', minLength: 1 },
  addr: STRING_OR_ENV,
  // At least one of `tokens` and `oauth`: resolve.ts says so in one sentence, where a schema
  // `anyOf` would report each branch.
  auth: {
    type: 'object',
    required: ['kind'],
    additionalProperties: false,
    properties: {
      kind: { const: 'bearer_token' },
      tokens: { type: 'object', minProperties: 1, additionalProperties: STRING_OR_ENV },
      oauth: { type: 'object', required: ['issuer', 'principals'], additionalProperties: false, properties: oauthProperties },
    } satisfies Record<keyof McpFrontConfig['proxy']['auth'], object>,
  },
  publicUrl: STRING_OR_ENV,
  maxBodyBytes: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER },
  maxEventBytes: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER },
  maxBatch: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER },
  keepAlive: DURATION,
  cors: {
    type: 'object',
    required: ['allowedOrigins'],
    additionalProperties: false,
    properties: {
      allowedOrigins: { type: 'array', items: { type: 'string' } },
    } satisfies Record<keyof NonNullable<McpFrontConfig['proxy']['cors']>, object>,
  },
  // Both keys required: a default threshold would be a guess about the deployment's clients.
  authThrottle: {
    type: 'object',
    required: ['maxFailures', 'window'],
    additionalProperties: false,
    properties: {
      maxFailures: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER },
      window: DURATION,
    } satisfies Record<keyof NonNullable<McpFrontConfig['proxy']['authThrottle']>, object>,
  },
  instanceId: STRING_OR_ENV,
  // Express's `trust proxy` values; resolve.ts checks each address. A hop count of 0 is `false`.
  trustProxy: {
    type: ['boolean', 'integer', 'string', 'array'],
    minimum: 1,
    maximum: 1000,
    items: { type: 'string' },
  },
  store: {
    type: 'object',
    required: ['redis'],
    additionalProperties: false,
    properties: {
      redis: {
        type: 'object',
        required: ['url'],
        additionalProperties: false,
        properties: {
          url: STRING_OR_ENV,
          keyPrefix: { type: 'string', maxLength: 200 },
        } satisfies Record<keyof NonNullable<McpFrontConfig['proxy']['store']>['redis'], object>,
      },
    } satisfies Record<keyof NonNullable<McpFrontConfig['proxy']['store']>, object>,
  },
  drainTimeout: DURATION,
  limits: {
    type: 'object',
    additionalProperties: {
      type: 'object',
      additionalProperties: false,
      properties: {
        // Both keys required: a window without a maximum (or the reverse) is a guess.
        requests: {
          type: 'object',
          required: ['max', 'window'],
          additionalProperties: false,
          properties: { max: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER }, window: DURATION },
        },
        maxSessions: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER },
      } satisfies Record<keyof TokenLimits, object>,
    },
  },
  audit: { type: 'boolean' },
  metrics: {
    type: 'object',
    additionalProperties: false,
    properties: {
      authTokens: { type: 'array', items: { type: 'string' } },
    } satisfies Record<keyof NonNullable<McpFrontConfig['proxy']['metrics']>, object>,
  },
} satisfies Record<keyof McpFrontConfig['proxy'], object>;

const configSchema = {
  type: 'object',
  required: ['proxy', 'mcpServers'],
  additionalProperties: false,
  properties: {
    version: { type: 'string', pattern: '^1(\\.\\d+)?$' },
    proxy: { type: 'object', required: ['auth'], additionalProperties: false, properties: proxyProperties },
    // An empty object is valid: a proxy with no servers still answers /health and can be
    // filled by reload(), which is how a deployment may start before its upstreams exist.
    mcpServers: {
      type: 'object',
      additionalProperties: { type: 'object', additionalProperties: false, properties: serverProperties },
    },
    aggregates: {
      type: 'object',
      additionalProperties: {
        type: 'object',
        required: ['servers'],
        additionalProperties: false,
        properties: {
          servers: {
            type: ['array', 'object'],
            items: { type: 'string', minLength: 1 },
            minItems: 1,
            minProperties: 1,
            additionalProperties: { type: 'object', additionalProperties: false, properties: { prefix: { type: 'string' } } satisfies Record<keyof AggregateMemberConfig, object> },
          },
          authTokens: { type: 'array', items: { type: 'string' } },
          separator: { enum: ['__', '-', '--', '_'] },
          onUnavailable: { enum: ['omit', 'fail'] },
        } satisfies Record<keyof AggregateConfig, object>,
      },
    },
  } satisfies Record<keyof McpFrontConfig, object>,
  $defs: {
    // Union types keep one error per bad value; `oneOf`/`anyOf` would report every branch.
    stringOrEnv: {
      type: ['string', 'object'],
      properties: { $env: { type: 'string', minLength: 1 } },
      required: ['$env'],
      additionalProperties: false,
    },
    duration: { type: ['integer', 'string'], minimum: 0, pattern: DURATION_PATTERN.source },
  },
};

// Compiled once at module load: compiling generates code and is far slower than validating.
export const validateShape = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true, verbose: true }).compile(
  configSchema,
);
