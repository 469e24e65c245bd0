/** The package version (package.json's, checked by test/package.test.ts). Its own module so the
 * launcher can answer --version without loading the CLI. */
export const VERSION = '0.1.0';
