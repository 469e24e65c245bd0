/** The package version (package.json's, checked by test/package.test.ts). */
export const VERSION = '0.1.0';
