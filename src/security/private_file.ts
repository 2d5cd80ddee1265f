/**
 * Whether a file that holds a secret (the HTTP token, the node key) is the
 * daemon user's alone: owned by that user, and neither group nor others may
 * read or write it. A secret file that fails is refused, not repaired: it may
 * already have been read or replaced, and only its owner can judge that.
 *
 * @module
 */

/** What is wrong with a secret file's owner or mode, or undefined when it is private. */
export type PrivateFileProblem = { owner: number } | { mode: string } | undefined;

/**
 * The problem with `info` as a secret file of user `uid`, or undefined. Where the system has no owners or modes
 * (Windows), there is nothing to check.
 */
export function privateFileProblem(info: Deno.FileInfo, uid: number | null): PrivateFileProblem {
  if (uid !== null && info.uid !== null && info.uid !== uid) return { owner: info.uid };
  if (info.mode !== null && (info.mode & 0o077) !== 0) {
    return { mode: (info.mode & 0o777).toString(8).padStart(3, "0") };
  }
  return undefined;
}
