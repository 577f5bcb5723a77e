// Lint: typescript-eslint's recommended rules with type information, plus the house rules
// that catch real bugs in async code (floating promises) and layer crossings (eslint/house.js).
const tseslint = require('typescript-eslint');

const house = require('./eslint/house');

module.exports = tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '*.js'] },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { project: './tsconfig.json', tsconfigRootDir: __dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      // `total += await f()` reads `total` before the await: concurrent loops lose updates
      'require-atomic-updates': ['error', { allowProperties: true }],
      '@typescript-eslint/only-throw-error': 'error',
      // rejections forward AbortSignal reasons, which are `unknown` by the DOM's definition
      '@typescript-eslint/prefer-promise-reject-errors': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
    },
  },
  // the layers and module boundaries of backend/src (eslint/house.js; cycles: test/unit/architecture.test.ts)
  {
    files: ['backend/src/**/*.ts'],
    plugins: { house: house.plugin },
    rules: { 'house/layers': 'error' },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/unbound-method': 'off',
      // HTTP bodies under test are checked by schemas and expectations, not by the compiler
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      // tests run their steps one after another; reassigning a fixture after an await is the point
      'require-atomic-updates': 'off',
    },
  },
);
