// OAuth 2.1 access tokens beside static tokens (README: OAuth 2.1): mcp-front as a resource
// server. `jose` is loaded only when a verifier first needs it, not by importing this.
export { CLOCK_TOLERANCE_S, createOAuthVerifier } from './verifier';
export type { OAuthFailure, OAuthVerifier, OAuthVerifierOptions, VerifiedToken, VerifyResult } from './verifier';
export { matchPrincipal } from './principals';
export { audienceAccepted } from './claims';
