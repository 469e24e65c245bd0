/**
 * Progress lines for the long phases of `patch` (fetch, base build, recompile, diff, build, verify):
 * one line per phase on stderr with the elapsed time, and during a long step a heartbeat line
 * every `heartbeatMs` so a build never looks hung.
 */
export type ProgressSink = (line: string) => void;

export interface Progress {
  /** One line: `xsplice: patch: [  12.3s] <what>`. */
  say(what: string): void;
  /** Runs `body` as a named step: a start line, heartbeat lines while it runs, an end line with its duration. */
  step<T>(what: string, body: () => Promise<T>, detail?: () => string): Promise<T>;
}

function fmt(ms: number): string {
  return (ms / 1000).toFixed(1).padStart(6) + 's';
}

export function makeProgress(sink: ProgressSink | undefined, heartbeatMs = 15_000): Progress {
  const t0 = Date.now();
  const emit = (what: string): void => {
    if (sink) sink(`xsplice: patch: [${fmt(Date.now() - t0)}] ${what}\n`);
  };
  return {
    say: emit,
    async step<T>(what: string, body: () => Promise<T>, detail?: () => string): Promise<T> {
      const start = Date.now();
      emit(`${what} ...`);
      const timer = sink
        ? setInterval(() => {
            const d = detail ? detail() : '';
            emit(`${what}: still running (${fmt(Date.now() - start).trim()}${d ? `, ${d}` : ''})`);
          }, heartbeatMs)
        : undefined;
      timer?.unref();
      try {
        const r = await body();
        emit(`${what}: done in ${fmt(Date.now() - start).trim()}`);
        return r;
      } finally {
        if (timer) clearInterval(timer);
      }
    },
  };
}
