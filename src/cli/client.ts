/**
 * How CLI commands talk to a running daemon: its HTTP endpoint, found by
 * `--http`, else `LANCHAT_HTTP`, else 127.0.0.1:47476.
 *
 * @module
 */
import { DEFAULT_HTTP } from "../daemon.ts";

/** Raised when no daemon answers; the CLI exits with code 3. */
export class NoDaemonError extends Error {
  override name = "NoDaemonError";
}

/** The base URL of the daemon to talk to. */
export function daemonUrl(flag: string | undefined): string {
  const raw = flag ?? Deno.env.get("LANCHAT_HTTP") ?? `${DEFAULT_HTTP.hostname}:${DEFAULT_HTTP.port}`;
  return /^https?:\/\//.test(raw) ? raw.replace(/\/+$/, "") : `http://${raw}`;
}

/** GETs a JSON document from the daemon. */
export async function getJson<T>(base: string, path: string): Promise<T> {
  let res: Response;
  try {
    res = await fetch(`${base}${path}`, { signal: AbortSignal.timeout(5000) });
  } catch (e) {
    const detail = `${e} ${(e as Error).cause ?? ""}`;
    const why = /refused/i.test(detail)
      ? "connection refused"
      : (e as Error).name === "TimeoutError"
      ? "no answer within 5 s"
      : detail.trim();
    throw new NoDaemonError(
      `No lanchat daemon answers at ${base} (${why}). Start one with "lanchat daemon", or point --http or LANCHAT_HTTP at a running one.`,
    );
  }
  const body = await res.text();
  if (!res.ok) throw new Error(`Daemon at ${base} answered ${res.status} to ${path}: ${body.trim()}`);
  try {
    return JSON.parse(body) as T;
  } catch {
    throw new Error(`Daemon at ${base} sent invalid JSON for ${path}`);
  }
}

/** "0.4s ago", "3m ago" for an ISO time. */
export function ago(iso: string, now = Date.now()): string {
  const ms = Math.max(0, now - Date.parse(iso));
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s ago`;
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)}m ago`;
  return `${Math.floor(ms / 3_600_000)}h ago`;
}

/** Lays out rows as left-aligned columns under a header. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd();
  return [line(header), ...rows.map(line)].join("\n") + "\n";
}
