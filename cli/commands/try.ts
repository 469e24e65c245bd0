import type { Command } from 'commander';

export function register(_program: Command, _setExit: (code: number) => void): void {
  // 'try' is registered by its owner module.
}
