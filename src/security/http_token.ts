/**
 * The bearer token the HTTP API requires when it listens beyond loopback:
 * read from its file, or made (32 random bytes, mode 0600) on first start.
 *
 * @module
 */

/** Reads the HTTP bearer token from `path`, creating a random one (mode 0600) if absent. */
export async function loadOrCreateToken(path: string): Promise<string> {
  try {
    const token = (await Deno.readTextFile(path)).trim();
    if (token.length < 16) {
      throw new Error(`HTTP token file ${path} holds fewer than 16 characters; use a longer token`);
    }
    return token;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) {
      if ((e as Error).message.startsWith("HTTP token file")) throw e;
      throw new Error(`Cannot read HTTP token file ${path}: ${(e as Error).message}`, { cause: e });
    }
  }
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  const token = btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
  try {
    await Deno.writeTextFile(path, token + "\n", { mode: 0o600, createNew: true });
  } catch (e) {
    throw new Error(`Cannot write HTTP token file ${path}: ${(e as Error).message}`, { cause: e });
  }
  return token;
}
