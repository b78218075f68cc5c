// The configuration fingerprint of authenticated `/health` (README: Running several instances):
// equal on instances that run the same configuration, different after any change of it, a changed
// secret included, so that an operator can see that a rollout or a reload reached every instance.
//
// It covers secret values, so it must not let anyone test guesses of a secret against it: it is
// derived with scrypt (RFC 7914) at N = 2^15, r = 8, p = 1 (32 MiB and tens of milliseconds per
// guess, which also defeats GPUs) over the whole resolved configuration, so a guess costs that
// much and needs every other secret of the configuration too. The salt is fixed and public
// because instances must agree without sharing anything but the configuration; its purpose is
// only to keep these fingerprints apart from any other use of scrypt. Computed once per
// configuration, off the event loop, when the router is created or reloaded; never per request.
import { scrypt } from 'node:crypto';
import type { ResolvedConfig } from './resolved-config';

export const FINGERPRINT_SALT = 'mcp-front config fingerprint v1';
const N = 2 ** 15;
const R = 8;
const P = 1;
const KEY_LENGTH = 16;
// scrypt needs 128 * N * r bytes; Node's default cap (32 MiB) is exactly that, with no headroom.
const MAX_MEMORY = 64 * 1024 * 1024;

/**
 * One canonical text of a resolved configuration: maps and sets sorted, URLs by their href. The
 * instance id is left out: it is the one setting that differs between instances by design.
 */
export function canonicalConfig(config: ResolvedConfig): string {
  const { instanceId: _instanceId, ...rest } = config;
  return JSON.stringify(rest, (_key, value: unknown) => {
    if (value instanceof Map) return [...value.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    if (value instanceof Set) return [...value].sort();
    if (value instanceof URL) return value.href;
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      return Object.fromEntries(Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    }
    return value;
  });
}

/** Hex fingerprint of a resolved configuration (32 characters). */
export function configFingerprint(config: ResolvedConfig): Promise<string> {
  return new Promise((resolve, reject) => {
    scrypt(canonicalConfig(config), FINGERPRINT_SALT, KEY_LENGTH, { N, r: R, p: P, maxmem: MAX_MEMORY }, (err, key) =>
      err ? reject(err) : resolve(key.toString('hex')),
    );
  });
}
