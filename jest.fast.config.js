// The fast tier (npm run test:fast): unit and in-process tests, for the edit-test loop. `npm test`
// stays the full run, these suites included.
const fs = require('node:fs');
const path = require('node:path');
const base = require('./jest.config');

/**
 * Suites left to the full run, each with why. A new suite belongs in the fast tier unless it is
 * listed here; list it when it needs what this tier leaves out (the built package, processes of its
 * own beyond a cheap stdio child, waits on process exits or idle timeouts).
 */
const SLOW = {
  'cli.test.ts': 'runs the built CLI (dist/) as a process, restarted per test, and waits on its log and exits',
  'examples.test.ts': 'runs every example against the built package, each with its own proxy and servers',
  'consumer.test.ts': 'packs the package (npm pack) and installs it into fresh projects',
  'stdio-lifecycle.test.ts': 'kills process trees and waits out SIGTERM→SIGKILL escalations and idle timeouts',
  'leaks.test.ts': 'dozens of sessions of every kind with their children, then idle timeouts and exits',
  'revision-stdio.test.ts': 'the proxy in a process of its own (to measure its memory), children flooding it',
};

// A renamed or removed suite must not leave a stale entry (its successor would join the fast tier unnoticed).
for (const file of Object.keys(SLOW)) {
  if (!fs.existsSync(path.join(__dirname, '__tests__', file))) throw new Error(`jest.fast.config.js lists ${file}, which does not exist`);
}

/** @type {import('jest').Config} */
module.exports = {
  ...base,
  testPathIgnorePatterns: [...base.testPathIgnorePatterns, ...Object.keys(SLOW).map((file) => `/__tests__/${file.replace(/\./g, '\\.')}$`)],
};
