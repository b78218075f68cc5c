/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/__tests__'],
  testMatch: ['**/*.test.ts'],
  // Browser tests need chromium: they run with jest.browser.config.js (npm run test:browser);
  // Redis tests need redis-server: jest.redis.config.js (npm run test:redis).
  testPathIgnorePatterns: ['/node_modules/', '\\.browser\\.test\\.ts$', '\\.redis\\.test\\.ts$'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json', diagnostics: false }] },
  // Real servers and child processes: two cores, so at most two files at once.
  maxWorkers: 2,
  testTimeout: 30000,
};
