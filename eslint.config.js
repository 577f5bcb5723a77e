// Lint: typescript-eslint's recommended rules with type information, plus the house rules
// that catch real bugs in async code (floating promises) and layer crossings (eslint/house.js),
// for the backend, its tests and the UI plugin (its own tsconfigs, its own layers below).
const tseslint = require('typescript-eslint');

const house = require('./eslint/house');

// The plugin reaches the backend only for the API contract's types: webpack bundles no backend code.
const UI_BACKEND = [
  { regex: '(^|/)backend/(?!src/api/contract$)', message: 'the plugin may only `import type` from backend/src/api/contract' },
  { regex: '(^|/)backend/src/api/contract$', allowTypeImports: true, message: 'the plugin may only `import type` from backend/src/api/contract (it bundles no backend code)' },
];

// The plugin's layers (README "The admin-portal plugin"): logic/ and intl/ are pure; services/
// alone talks to the backup service, integrations/ alone to WebAdmin's pluginApi; context/ wires
// them into a page; hooks/ own loading, state and actions; components/ render; entries/ mount.
// `forbidden` folders are siblings, reached as ../<name> (../../<name> from a subfolder).
const uiLayer = (from, forbidden, extra = [], extraPaths = []) => ({
  files: [`ui-plugin/src/${from}/**/*.{ts,tsx}`],
  rules: {
    '@typescript-eslint/no-restricted-imports': [
      'error',
      {
        paths: extraPaths,
        patterns: [
          ...UI_BACKEND,
          ...forbidden.map((f) => ({
            group: [`../${f}`, `../${f}/**`, `../../${f}`, `../../${f}/**`],
            message: `ui-plugin ${from}/ must not import ${f}/`,
          })),
          ...extra,
        ],
      },
    ],
  },
});

module.exports = tseslint.config(
  // webpack's config and the bundle-size script are CommonJS build tools outside both TS programs
  { ignores: ['dist/**', 'node_modules/**', '*.js', 'ui-plugin/dist/**', 'ui-plugin/**/*.js'] },
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
  // the plugin's browser code and its unit tests, typed by their own tsconfigs
  {
    files: ['ui-plugin/**/*.{ts,tsx}'],
    languageOptions: { parserOptions: { project: ['./ui-plugin/tsconfig.json', './ui-plugin/tsconfig.test.json'], tsconfigRootDir: __dirname } },
  },
  { files: ['ui-plugin/src/**/*.{ts,tsx}'], rules: { '@typescript-eslint/no-restricted-imports': ['error', { patterns: UI_BACKEND }] } },
  uiLayer('logic', ['components', 'hooks', 'services', 'integrations', 'context', 'entries']),
  uiLayer('intl', ['components', 'hooks', 'services', 'integrations', 'context', 'entries', 'logic']),
  uiLayer('services', ['components', 'hooks', 'integrations', 'context', 'entries']),
  uiLayer('integrations', ['components', 'hooks', 'context', 'entries']),
  uiLayer('context', ['components', 'hooks', 'entries']),
  uiLayer('hooks', ['components', 'integrations', 'entries']),
  // components render: data and actions come from hooks/ (so a new button or view gets its
  // loading, permissions and errors in one place), texts from useTexts()
  uiLayer('components', ['integrations', 'entries'], [
    { group: ['../services', '../services/**', '../../services', '../../services/**'], allowTypeImports: true, message: 'ui-plugin components/ must not call services/: a hook does (types are fine)' },
    { group: ['../context/appContext', '../../context/appContext'], importNames: ['useApp'], message: 'ui-plugin components/ get data and actions from hooks/ and texts from useTexts(), not the whole page context' },
  ]),
  {
    files: ['test/**/*.ts', 'ui-plugin/src/**/*.test.ts'],
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
