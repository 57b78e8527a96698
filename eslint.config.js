'use strict';

// ESLint (flat config): eslint's recommended rules plus a few that catch real bugs, over the
// JavaScript we own. `npm run lint`; CI runs it. No formatting rules: layout is left as it is.
const js = require('@eslint/js');
const globals = require('globals');

module.exports = [
  {
    ignores: ['node_modules/**', 'build/**', 'prebuilds/**', 'fuzz/corpus/**', 'examples/**']
  },
  { linterOptions: { reportUnusedDisableDirectives: 'error' } },
  js.configs.recommended,
  {
    files: ['**/*.js', '**/*.cjs'],
    languageOptions: {
      ecmaVersion: 2022, // engines: node >= 18
      sourceType: 'commonjs',
      globals: { ...globals.node }
    },
    rules: {
      // An unused binding is usually a forgotten or misspelt use; `_name` marks one kept on
      // purpose. Unused catch bindings are allowed.
      'no-unused-vars': [
        'error',
        { args: 'after-used', argsIgnorePattern: '^_', caughtErrors: 'none', varsIgnorePattern: '^_' }
      ],
      // `catch {}` is this code's way of saying "a failure here changes nothing".
      'no-empty': ['error', { allowEmptyCatch: true }],
      eqeqeq: ['error', 'always', { null: 'ignore' }],
      'no-self-compare': 'error',
      'no-template-curly-in-string': 'error',
      'no-unreachable-loop': 'error',
      'no-constructor-return': 'error',
      'array-callback-return': 'error',
      'no-var': 'error',
      strict: ['error', 'global']
    }
  },
  {
    files: ['**/*.mjs'],
    languageOptions: { ecmaVersion: 2022, sourceType: 'module', globals: { ...globals.node } }
  },
  {
    files: ['test/**'],
    languageOptions: { globals: { ...globals.mocha } }
  },
  {
    // Functions these pass to page.evaluate() run in the browser page, not in Node.
    files: ['test/browser.test.js', 'test/consumers/overrides-app/puppeteer.mjs'],
    languageOptions: { globals: { window: 'readonly', document: 'readonly' } }
  }
];
