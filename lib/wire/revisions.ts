// Protocol revisions the proxy tells apart (MCP specification, Versioning; docs/protocol-2026-07-28.md).

/** The first revision whose requests stand alone, carrying their version in `params._meta`. */
export const MODERN_VERSION = '2026-07-28';
/** What a 2025-era stdio server speaks (SDK 1.x `SUPPORTED_PROTOCOL_VERSIONS`). */
export const LEGACY_VERSIONS = ['2025-11-25', '2025-06-18', '2025-03-26', '2024-11-05'];

/** `params._meta` keys of a modern request. */
export const PROTOCOL_VERSION = 'io.modelcontextprotocol/protocolVersion';
export const CLIENT_CAPABILITIES = 'io.modelcontextprotocol/clientCapabilities';

/** JSON-RPC error code of "unsupported protocol version", with `data.supported`. */
export const UNSUPPORTED_VERSION = -32022;

export const isModernVersion = (v: unknown): v is string => typeof v === 'string' && v >= MODERN_VERSION;
