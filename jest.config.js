/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/__tests__'],
  testMatch: ['**/*.test.ts'],
  // Browser tests need chromium: they run with jest.browser.config.js (npm run test:browser);
  // Redis tests need redis-server: jest.redis.config.js (npm run test:redis); the multi-instance
  // test needs haproxy, nginx and redis-server: jest.cluster.config.js (npm run test:cluster).
  testPathIgnorePatterns: ['/node_modules/', '\\.browser\\.test\\.ts$', '\\.redis\\.test\\.ts$', '\\.cluster\\.test\\.ts$'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json', diagnostics: false }] },
  // Real servers and child processes: two cores, so at most two files at once.
  maxWorkers: 2,
  // Above every wait's own deadline (PATIENCE_MS in __tests__/helpers/servers.ts, the examples' and
  // the CLI's): a hang fails with what was awaited, and a busy machine (two cores shared with other
  // work) is slow, not wrong.
  testTimeout: 180_000,
};
