// The tests that need a real redis-server (Debian's `redis-server`): `npm run test:redis`, not
// `npm test`, so that a fresh clone needs nothing but npm.
const base = require('./jest.config');

/** @type {import('jest').Config} */
module.exports = {
  ...base,
  testMatch: ['**/*.redis.test.ts'],
  testPathIgnorePatterns: ['/node_modules/'],
  testTimeout: 60000,
};
