// TokenIndex hashes with crypto.hash where Node has it (20.12+) and with createHash before: both
// paths must match the same tokens, non-ASCII values included.
import type { TokenIndex as TokenIndexType } from '../lib/auth/bearer';

const tokens = new Map([
  ['dev', 'dev-token-0123456789abcdefghij'],
  ['unicode', 'tökén-ünïcödé-0123456789'],
]);

function check(TokenIndex: typeof TokenIndexType): void {
  const index = new TokenIndex(tokens);
  expect(index.match('dev-token-0123456789abcdefghij')).toBe('dev');
  expect(index.match('tökén-ünïcödé-0123456789')).toBe('unicode');
  expect(index.match('dev-token-0123456789abcdefghiJ')).toBeUndefined();
  expect(index.authenticate('Bearer dev-token-0123456789abcdefghij')).toEqual({ ok: true, token: 'dev' });
}

test('one-shot crypto.hash', () => {
  jest.isolateModules(() => {
    const crypto = jest.requireActual<typeof import('node:crypto')>('node:crypto');
    expect(typeof crypto.hash).toBe('function');
    check((jest.requireActual('../lib/auth/bearer') as typeof import('../lib/auth/bearer')).TokenIndex);
  });
});

test('createHash fallback on a Node without crypto.hash', () => {
  jest.isolateModules(() => {
    jest.doMock('node:crypto', () => ({ ...jest.requireActual('node:crypto'), hash: undefined }));
    check((require('../lib/auth/bearer') as typeof import('../lib/auth/bearer')).TokenIndex);
    jest.dontMock('node:crypto');
  });
});
