// The tests that drive mcp-front with the official Python MCP SDK (python3, and the `mcp` package
// installed by pip into a cached virtual environment): `npm run test:python`, not `npm test`, so
// that a fresh clone needs nothing but npm, and `npm test` never waits on a Python package index.
const base = require('./jest.config');

/** @type {import('jest').Config} */
module.exports = {
  ...base,
  testMatch: ['**/*.python.test.ts'],
  testPathIgnorePatterns: ['/node_modules/'],
};
