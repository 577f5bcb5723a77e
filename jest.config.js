// Tests are compiled by `tsc` first (npm test builds) and jest runs the JavaScript in dist/:
// the repository's worker threads load compiled .js files, which a TS-in-jest transform cannot give them.
/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/dist'],
  testMatch: ['**/*.test.js'],
  testTimeout: 120000,
  maxWorkers: 2,
};
