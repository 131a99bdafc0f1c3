// Lint: the recommended JS and TypeScript rules, plus the project's
// "no escape hatches" rules (no `any`, no `@ts-ignore`, no `!`, no `as` that
// only strips null/undefined) and the type-aware promise rules.
//
// Type information comes from tsconfig.strict.json (tsconfig.json plus
// exactOptionalPropertyTypes and noUncheckedIndexedAccess), so that a value
// read by index is `T | undefined` here too and `arr[i] as T` is caught.
// Plain JS files (this file, e2e/public/*.js run in the browser) are not in any
// tsconfig: they are linted without type information.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

export default tseslint.config(
  { ignores: ['dist/**', '.tmp/**', 'node_modules/**', 'e2e/public/vendor/**', 'test-results/**', 'playwright-report/**', 'bench/results/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: { ...globals.node, ...globals.browser },
      parserOptions: { project: './tsconfig.strict.json', tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/ban-ts-comment': ['error', { 'ts-ignore': true, 'ts-nocheck': true, 'ts-expect-error': 'allow-with-description' }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-constant-condition': ['error', { checkLoops: false }],
      // node:test's test()/describe()/it() return a promise the runner itself
      // awaits and reports on; they are the one known-safe floating call.
      // Subtests (`t.test(...)`) are not on the list: await them.
      '@typescript-eslint/no-floating-promises': ['error', {
        allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'describe', 'it', 'suite'] }],
      }],
      // Full checks, checksVoidReturn included: an async function handed to a
      // listener or callback that ignores its result loses its rejection. The
      // code base has (almost) no such spots, so the default is not noisy;
      // where one is meant, wrap it: `() => { void work().catch(report); }`.
      '@typescript-eslint/no-misused-promises': 'error',
      // No `x!`, and (below) no `x as T` where x is `T | null | undefined`:
      // non-nullable-type-assertion-style reports exactly the `as` casts that
      // only strip null/undefined; with no-non-null-assertion also on, neither
      // spelling is allowed. Narrow, throw a clear error, or use `?? default`.
      // (Do not run `eslint --fix` for it: its fix rewrites the cast to `!`.)
      '@typescript-eslint/no-non-null-assertion': 'error',
      '@typescript-eslint/non-nullable-type-assertion-style': 'error',
    },
  },
  {
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    ...tseslint.configs.disableTypeChecked,
  },
);
