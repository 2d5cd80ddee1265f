/**
 * The data directory: where it is by default, how it is created, and the
 * files in it (the node key, the database, the HTTP token). One place for
 * the layout, which the daemon, the CLI and error messages all name.
 *
 * @module
 */

/** The node's key pair (security/identity.ts). */
export const KEY_FILE = "node_key.json";
/** The database (storage/store.ts). */
export const DB_FILE = "lanchat.db";
/** The bearer token the HTTP API requires, on loopback too (security/http_token.ts). */
export const HTTP_TOKEN_FILE = "http_token";

/**
 * The default data directory: `$XDG_DATA_HOME/lanchat`, else
 * `$HOME/.local/share/lanchat`.
 */
export function defaultDataDir(env: (name: string) => string | undefined): string {
  const xdg = env("XDG_DATA_HOME");
  if (xdg) return `${xdg}/lanchat`;
  const home = env("HOME");
  if (!home) throw new Error("Cannot choose a data directory: neither XDG_DATA_HOME nor HOME is set; pass --data-dir");
  return `${home}/.local/share/lanchat`;
}

/** Creates the data directory (mode 0700) if it does not exist. */
export async function ensureDataDir(dir: string): Promise<void> {
  try {
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw new Error(`Cannot create data directory ${dir}: ${(e as Error).message}`, { cause: e });
  }
}

/**
 * The mode of `dir` (octal, e.g. "755") when group or others may enter or
 * read it, else undefined (0700, or a system without modes).
 */
export function openToOthers(dir: string): string | undefined {
  const mode = Deno.statSync(dir).mode;
  return mode !== null && (mode & 0o077) !== 0 ? (mode & 0o777).toString(8).padStart(3, "0") : undefined;
}

/**
 * Where received files go by default: `lanchat/` in the user's download
 * directory (`$XDG_DOWNLOAD_DIR`, else `$HOME/Downloads`).
 */
export function defaultDownloads(env: (name: string) => string | undefined): string {
  const xdg = env("XDG_DOWNLOAD_DIR");
  if (xdg) return `${xdg}/lanchat`;
  const home = env("HOME");
  if (!home) {
    throw new Error("Cannot choose a downloads folder: neither XDG_DOWNLOAD_DIR nor HOME is set; pass --downloads");
  }
  return `${home}/Downloads/lanchat`;
}
