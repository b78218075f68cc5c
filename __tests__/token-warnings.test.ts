import { randomBytes } from 'node:crypto';
import { tokenWarnings } from '../lib/config/token-warnings';

const STRONG_A = 'Qx7vN2mK9pL4rT8wY3zB6cF1hJ5dG0sA';
const STRONG_B = 'aZ3kP9qW2eR7tY1uI6oL4sD8fG5hJ0xC';

function config(tokens: Record<string, string>, literal: string[] = []) {
  return { tokens: new Map(Object.entries(tokens)), literalTokens: new Set(literal) };
}

function valuesIn(text: string, tokens: Record<string, string>): string[] {
  return Object.values(tokens).filter((v) => text.includes(v));
}

describe('tokenWarnings', () => {
  test('strong, distinct tokens from the environment give no warning', () => {
    expect(tokenWarnings(config({ a: STRONG_A, b: STRONG_B }), { NODE_ENV: 'production' })).toEqual([]);
  });

  test('a generated token (43 base64url characters) gives no warning', () => {
    for (let i = 0; i < 50; i++) {
      expect(tokenWarnings(config({ t: randomBytes(32).toString('base64url') }), {})).toEqual([]);
    }
  });

  test('a token shorter than 20 characters is named, not shown', () => {
    const tokens = { dev: 'dev-token-123', prod: STRONG_A };
    const warnings = tokenWarnings(config(tokens), {});
    expect(warnings).toEqual([{ code: 'token_too_short', token: 'dev', message: expect.stringContaining('"dev"') }]);
    expect(valuesIn(JSON.stringify(warnings), tokens)).toEqual([]);
    expect(warnings[0].message).toMatch(/generate-token/);
  });

  test('exactly 20 characters is long enough', () => {
    expect(tokenWarnings(config({ t: 'abcdefghijklmnopqrst' }), {})).toEqual([]);
    expect(tokenWarnings(config({ t: 'abcdefghijklmnopqrs' }), {}).map((w) => w.code)).toEqual(['token_too_short']);
  });

  test.each([
    ['a single repeated character', 'x'.repeat(40)],
    ['a short repeated pattern', 'abab'.repeat(10)],
    ['seven distinct characters', 'abcdefg'.repeat(5)],
  ])('%s is low variety', (_label, value) => {
    const warnings = tokenWarnings(config({ weak: value }), {});
    expect(warnings).toEqual([{ code: 'token_low_variety', token: 'weak', message: expect.stringContaining('"weak"') }]);
    expect(warnings[0].message).not.toContain(value);
  });

  test('a short token with low variety gives one warning, not two', () => {
    expect(tokenWarnings(config({ t: 'aaaa' }), {}).map((w) => w.code)).toEqual(['token_too_short']);
  });

  test('the same value under two names names both, never the value', () => {
    const tokens = { alice: STRONG_A, bob: STRONG_A, carol: STRONG_B };
    const warnings = tokenWarnings(config(tokens), {});
    expect(warnings).toEqual([{ code: 'token_duplicate', token: 'alice,bob', message: expect.any(String) }]);
    expect(warnings[0].message).toContain('"alice" and "bob"');
    expect(warnings[0].message).not.toContain('carol');
    expect(valuesIn(JSON.stringify(warnings), tokens)).toEqual([]);
  });

  test('three names sharing a value give one warning naming all three', () => {
    const warnings = tokenWarnings(config({ a: STRONG_A, b: STRONG_A, c: STRONG_A }), {});
    expect(warnings).toHaveLength(1);
    expect(warnings[0].message).toContain('"a", "b" and "c"');
  });

  test('literal tokens are reported only when NODE_ENV=production', () => {
    const c = config({ lit: STRONG_A, fromEnv: STRONG_B }, ['lit']);
    expect(tokenWarnings(c, {})).toEqual([]);
    expect(tokenWarnings(c, { NODE_ENV: 'development' })).toEqual([]);
    const warnings = tokenWarnings(c, { NODE_ENV: 'production' });
    expect(warnings).toEqual([{ code: 'token_literal_in_production', token: 'lit', message: expect.stringContaining('$env') }]);
    expect(valuesIn(JSON.stringify(warnings), { lit: STRONG_A, fromEnv: STRONG_B })).toEqual([]);
  });

  test('every kind at once, each once', () => {
    const c = config({ short: 'abc', dup1: STRONG_A, dup2: STRONG_A, ok: STRONG_B }, ['short', 'ok']);
    expect(tokenWarnings(c, { NODE_ENV: 'production' }).map((w) => `${w.code}:${w.token}`)).toEqual([
      'token_too_short:short',
      'token_duplicate:dup1,dup2',
      'token_literal_in_production:short',
      'token_literal_in_production:ok',
    ]);
  });

  test('defaults to process.env', () => {
    const saved = process.env.NODE_ENV;
    process.env.NODE_ENV = 'production';
    try {
      expect(tokenWarnings(config({ lit: STRONG_A }, ['lit'])).map((w) => w.code)).toEqual(['token_literal_in_production']);
    } finally {
      if (saved === undefined) delete process.env.NODE_ENV;
      else process.env.NODE_ENV = saved;
    }
  });
});
