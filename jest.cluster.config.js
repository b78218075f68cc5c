// The multi-instance test (README: Running several instances): mcp-front processes behind Debian's
// `haproxy` and `nginx`, with `redis-server`. `npm run test:cluster`, not `npm test`, so that a
// fresh clone needs nothing but npm.
const base = require('./jest.config');

/** @type {import('jest').Config} */
module.exports = {
  ...base,
  testMatch: ['**/*.cluster.test.ts'],
  testPathIgnorePatterns: ['/node_modules/'],
};
