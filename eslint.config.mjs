// Lint rules that catch defects, not matters of taste (prettier owns layout).
// Type-aware (tsconfig.json for src and cli, test/tsconfig.json for the tests) so that a promise nobody
// awaits — in a test, an `expect(...).rejects` that can never fail — is an error.
import js from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import tseslint from 'typescript-eslint';

const defects = {
  // Taste, not defects, in js.configs.recommended:
  'no-regex-spaces': 'off',
  'preserve-caught-error': 'off',
  'no-useless-assignment': 'off',
  eqeqeq: ['error', 'always', { null: 'ignore' }],
  'no-fallthrough': 'error',
  'no-constant-condition': ['error', { checkLoops: false }],
  'no-self-compare': 'error',
  'no-template-curly-in-string': 'error',
  'no-unreachable-loop': 'error',
  'no-unused-vars': ['error', { args: 'after-used', argsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true }],
};

export default defineConfig([
  globalIgnores(['node_modules/', 'dist/', '.cache/', 'out/']),
  {
    files: ['**/*.{ts,mjs,js}'],
    extends: [js.configs.recommended],
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: 'module',
      // Node's globals, for the .mjs scripts and benches (TypeScript checks its own files).
      globals: {
        process: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        URL: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        performance: 'readonly',
        TextDecoder: 'readonly',
        TextEncoder: 'readonly',
        structuredClone: 'readonly',
        queueMicrotask: 'readonly',
        setImmediate: 'readonly',
        AbortController: 'readonly',
      },
    },
    rules: defects,
  },
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.base, tseslint.configs.eslintRecommended],
    languageOptions: {
      parserOptions: { projectService: { allowDefaultProject: ['vitest.config.ts'] }, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      'no-unused-vars': 'off',
      '@typescript-eslint/no-unused-vars': defects['no-unused-vars'],
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-unused-expressions': 'error',
      '@typescript-eslint/no-base-to-string': 'error',
      '@typescript-eslint/no-duplicate-enum-values': 'error',
    },
  },
]);
