/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/__tests__'],
  testMatch: ['**/*.test.ts'],
  // Browser tests need chromium: they run with jest.browser.config.js (npm run test:browser);
  // Redis tests need redis-server: jest.redis.config.js (npm run test:redis); the multi-instance
  // test needs haproxy, nginx and redis-server: jest.cluster.config.js (npm run test:cluster); the
  // Python SDK tests need python3 and pip: jest.python.config.js (npm run test:python).
  testPathIgnorePatterns: ['/node_modules/', '\\.browser\\.test\\.ts$', '\\.redis\\.test\\.ts$', '\\.cluster\\.test\\.ts$', '\\.python\\.test\\.ts$'],
  // `jose` 6 is ESM-only; lib/ loads it with `import()`, which tsc keeps as a real `import()` in the
  // CommonJS build, but jest runs modules in a vm without ESM support (a dynamic import there needs
  // --experimental-vm-modules). So under jest only, TypeScript is compiled to plain CommonJS
  // (`import()` becomes `require()`, tsconfig.json's other options unchanged) and jose's own ES
  // modules are compiled to CommonJS too.
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: { module: 'commonjs', moduleResolution: 'node10' }, diagnostics: false }],
    '^.+/node_modules/jose/.+\\.js$': ['ts-jest', { tsconfig: { module: 'commonjs', moduleResolution: 'node10', allowJs: true }, diagnostics: false }],
  },
  transformIgnorePatterns: ['/node_modules/(?!jose/)'],
  // Real servers and child processes: two cores, so at most two files at once.
  maxWorkers: 2,
  // Above every wait's own deadline (PATIENCE_MS in __tests__/helpers/servers.ts, the examples' and
  // the CLI's): a hang fails with what was awaited, and a busy machine (two cores shared with other
  // work) is slow, not wrong.
  testTimeout: 180_000,
};
