// The tests that drive a real browser (Debian's chromium): `npm run test:browser`, not `npm test`,
// so that a fresh clone needs nothing but npm.
const base = require('./jest.config');

/** @type {import('jest').Config} */
module.exports = {
  ...base,
  testMatch: ['**/*.browser.test.ts'],
  testPathIgnorePatterns: ['/node_modules/'],
};
