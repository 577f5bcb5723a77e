// Lint: typescript-eslint's recommended rules with type information, plus the house rules
// that catch real bugs in async code (floating promises) and layer crossings (DESIGN.md §3).
const tseslint = require('typescript-eslint');

const layer = (from, forbidden) => ({
  files: [`backend/src/${from}/**/*.ts`],
  rules: {
    // sibling folders are reached as ../<name> (or ../../<name> from a subfolder)
    'no-restricted-imports': [
      'error',
      {
        patterns: forbidden.map((f) => ({
          group: [`../${f}`, `../${f}/**`, `../../${f}`, `../../${f}/**`],
          message: `${from}/ must not import ${f}/ (DESIGN.md §3)`,
        })),
      },
    ],
  },
});

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
  layer('repository', ['qmp', 'nbd', 'backup', 'restore', 'cli', 'hosts', 'api', 'engine', 'jobs']),
  layer('qmp', ['repository', 'nbd', 'backup', 'restore', 'cli', 'hosts', 'api', 'engine', 'jobs']),
  layer('nbd', ['repository', 'qmp', 'backup', 'restore', 'cli', 'hosts', 'api', 'engine', 'jobs']),
  layer('engine', ['repository', 'qmp', 'nbd', 'backup', 'restore', 'cli', 'hosts', 'api', 'jobs']),
  layer('hosts', ['repository', 'engine', 'backup', 'restore', 'cli', 'api', 'jobs']),
  layer('backup', ['cli', 'api', 'jobs']),
  layer('restore', ['cli', 'api', 'jobs', 'backup']),
  // catalog/ may read the API contract's types (`import type`), nothing else of api/ or above it
  {
    files: ['backend/src/catalog/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: ['express', 'ws'].map((name) => ({ name, message: `catalog/ must not import ${name} (DESIGN.md §3)` })),
          patterns: [
            { group: ['../api', '../api/**'], allowTypeImports: true, message: 'catalog/ may only `import type` from api/ (DESIGN.md §3)' },
            ...['jobs', 'backup', 'qmp', 'nbd', 'hosts', 'engine', 'restore', 'cli'].map((f) => ({
              group: [`../${f}`, `../${f}/**`],
              message: `catalog/ must not import ${f}/ (DESIGN.md §3)`,
            })),
          ],
        },
      ],
    },
  },
  // jobs/ may read the API contract's types; only api/ knows HTTP and WebSockets
  {
    files: ['backend/src/jobs/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: ['express', 'ws'].map((name) => ({ name, message: `jobs/ must not import ${name} (DESIGN.md §3)` })),
          patterns: [
            { group: ['../api', '../api/**'], allowTypeImports: true, message: 'jobs/ may only `import type` from api/ (DESIGN.md §3)' },
            ...['cli', 'catalog', 'qmp', 'nbd'].map((f) => ({ group: [`../${f}`, `../${f}/**`], message: `jobs/ must not import ${f}/ (DESIGN.md §3)` })),
          ],
        },
      ],
    },
  },
  layer('api', ['qmp', 'nbd', 'hosts', 'backup', 'restore', 'cli', 'catalog', 'main']),
  {
    files: ['backend/src/**/*.ts'],
    ignores: ['backend/src/api/**', 'backend/src/catalog/**', 'backend/src/jobs/**'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        { paths: ['express', 'ws'].map((name) => ({ name, message: `only api/ may import ${name} (DESIGN.md §3)` })) },
      ],
    },
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
