/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/__tests__'],
  testMatch: ['**/*.test.ts'],
  // Browser tests need chromium: they run with jest.browser.config.js (npm run test:browser).
  testPathIgnorePatterns: ['/node_modules/', '\\.browser\\.test\\.ts$'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json', diagnostics: false }] },
  // Real servers and child processes: two cores, so at most two files at once.
  maxWorkers: 2,
  testTimeout: 30000,
};
