/**
 * The daemon's last resort: a promise rejection or an exception that nothing
 * else handled is a bug, but it must not end the daemon (its UDP side keeps
 * serving peers, its outbox keeps its promises). It is logged with its
 * stack, counted (`counters.unexpectedErrors` in /status,
 * `lanchat_unexpected_errors_total` in /metrics), and the daemon goes on.
 *
 * Installed by `lanchat daemon` only (not by tests that run a daemon in
 * process, whose own unhandled errors must fail them).
 *
 * @module
 */
import { logger } from "../common/log.ts";

let count = 0;
let installed = false;

/** Unexpected errors caught by the last resort since the process started. */
export function unexpectedErrors(): number {
  return count;
}

/** Installs the handlers (once). */
export function installLastResort(): void {
  if (installed) return;
  installed = true;
  const log = logger("daemon");
  const report = (what: string, error: unknown) => {
    count++;
    const e = error instanceof Error ? error : new Error(String(error));
    log.error("Unexpected {what} (a bug, please report it; the daemon goes on): {error}\n{stack}", {
      what,
      error: `${e.name}: ${e.message}`,
      stack: e.stack ?? "(no stack)",
    });
  };
  globalThis.addEventListener("unhandledrejection", (e) => {
    e.preventDefault();
    report("unhandled rejection", e.reason);
  });
  globalThis.addEventListener("error", (e) => {
    e.preventDefault();
    report("uncaught exception", e.error ?? e.message);
  });
}
