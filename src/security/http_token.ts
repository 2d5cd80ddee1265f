/**
 * The bearer token every route of the HTTP API but `/healthz` requires, on
 * loopback too: read from its file, or made (32 random bytes) on first start.
 * The file is the proof of being the daemon's owner, so it is made mode 0600
 * with no moment when it is readable by others or half written (written to a
 * private temporary file, then linked into place), and a file that others
 * could have read, or that another user owns, is refused, as ssh refuses a
 * private key in that state: it may have leaked already, and the admin is
 * the one to decide (remove it for a new token, or `chmod 600` it).
 *
 * @module
 */
import { privateFileProblem } from "./private_file.ts";

/** Shortest token accepted from a file someone wrote by hand. */
const MIN_TOKEN_CHARS = 16;

/**
 * Why the file at `path` may not hold the token (group or world may read or
 * write it, or another user owns it), or undefined when it is private.
 * Where the system has no modes or owners (Windows), there is nothing to check.
 */
export function unsafeTokenFile(info: Deno.FileInfo, path: string, uid = Deno.uid()): string | undefined {
  const problem = privateFileProblem(info, uid);
  if (problem && "owner" in problem) {
    return `HTTP token file ${path} belongs to user ${problem.owner}, not to this daemon's user ${uid}: ` +
      `that user can read or change it; remove it and start again for a new token of your own`;
  }
  if (problem) {
    const mode = problem.mode;
    return `HTTP token file ${path} has mode ${mode}: other users of this host may have read it; ` +
      `remove it and start again for a new token (or, if no one else could have read it, chmod 600 it)`;
  }
  return undefined;
}

/** A new random token: 32 bytes, base64url. */
function newToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/**
 * Reads the HTTP bearer token from `path`, creating a random one (mode 0600)
 * if absent; throws a clear error when the file is not private to this user
 * ({@link unsafeTokenFile}) or holds too short a token.
 */
export async function loadOrCreateToken(path: string): Promise<string> {
  const existing = await readToken(path);
  if (existing !== undefined) return existing;
  const token = newToken();
  // Created 0600 with O_EXCL (the umask can only take bits away), written in full, then linked to its
  // name: a reader sees no file or the whole token, never a readable or half-written one. link() fails
  // if another daemon made the file meanwhile: then its token is the one.
  const tmp = `${path}.${crypto.randomUUID()}.tmp`;
  try {
    await Deno.writeTextFile(tmp, token + "\n", { mode: 0o600, createNew: true });
    await Deno.link(tmp, path);
  } catch (e) {
    if (e instanceof Deno.errors.AlreadyExists) return (await readToken(path)) ?? token;
    throw new Error(`Cannot write HTTP token file ${path}: ${(e as Error).message}`, { cause: e });
  } finally {
    await Deno.remove(tmp).catch(() => {});
  }
  return token;
}

/** The token in `path`, undefined when there is no such file. */
async function readToken(path: string): Promise<string | undefined> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw new Error(`Cannot read HTTP token file ${path}: ${(e as Error).message}`, { cause: e });
  }
  const unsafe = unsafeTokenFile(info, path);
  if (unsafe) throw new Error(unsafe);
  let token: string;
  try {
    token = (await Deno.readTextFile(path)).trim();
  } catch (e) {
    throw new Error(`Cannot read HTTP token file ${path}: ${(e as Error).message}`, { cause: e });
  }
  if (token.length < MIN_TOKEN_CHARS) {
    throw new Error(`HTTP token file ${path} holds fewer than ${MIN_TOKEN_CHARS} characters; use a longer token`);
  }
  return token;
}
