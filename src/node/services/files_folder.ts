/**
 * The folder an accepted offer is saved in: checked when it is accepted
 * (made if missing, a folder and not a file, writable: a file is made in it
 * and removed), so that an offer is never accepted into a folder that
 * cannot be; and made again when the fetch starts, where a permanent
 * failure (a file in the way, no permission, a read-only or system file
 * system) fails the transfer with the reason in words rather than being
 * retried for ever. The words never carry the runtime's own (`os error 17`,
 * `run again with the --allow-all flag`).
 *
 * @module
 */
import { FileError, PRIVATE_DIR } from "./files_model.ts";

/** Why a folder cannot hold received files, in words; undefined when it can (it is made if missing). */
export function folderProblem(dir: string): string | undefined {
  try {
    Deno.mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR });
    if (!Deno.statSync(dir).isDirectory) return `${dir} is a file, not a folder`;
    const probe = Deno.makeTempFileSync({ dir, prefix: ".lanchat-write-check-" });
    Deno.removeSync(probe);
    return undefined;
  } catch (e) {
    return folderWords(dir, e);
  }
}

/**
 * Makes the folder a fetch saves in. A permanent failure is a
 * {@link FileError} (the transfer fails, with why); anything else (a disk
 * full for now, an I/O error) is thrown as it is, to be tried again.
 */
export async function makeFolder(dir: string): Promise<void> {
  try {
    await Deno.mkdir(dir, { recursive: true, mode: PRIVATE_DIR });
  } catch (e) {
    if (permanent(e)) throw new FileError(`Cannot save in ${dir}: ${folderWords(dir, e)}`);
    throw e;
  }
}

/** Whether a file system error stays whatever is tried again. */
function permanent(e: unknown): boolean {
  return e instanceof Deno.errors.AlreadyExists || e instanceof Deno.errors.NotADirectory ||
    e instanceof Deno.errors.PermissionDenied || e instanceof Deno.errors.NotCapable ||
    // Made with every folder above it and still "not found": a file system that makes none (/proc).
    e instanceof Deno.errors.NotFound ||
    /read-only file system/i.test(String((e as Error)?.message));
}

/** A file system error about `dir` in words. */
function folderWords(dir: string, e: unknown): string {
  if (e instanceof Deno.errors.AlreadyExists || e instanceof Deno.errors.NotADirectory) {
    return `${dir} cannot be a folder: it, or a folder above it, is a file`;
  }
  if (e instanceof Deno.errors.PermissionDenied) return `no permission to write in ${dir}`;
  if (e instanceof Deno.errors.NotFound) return `${dir} cannot be made: its file system makes no folders there`;
  if (e instanceof Deno.errors.NotCapable) return `${dir} is not a place files can be saved in (a system folder)`;
  const message = String((e as Error)?.message ?? e);
  if (/read-only file system/i.test(message)) return `${dir} is on a read-only file system`;
  if (/no space left/i.test(message)) return `no space left on the device of ${dir}`;
  return `${dir} cannot be written: ${message.replace(/\s*\(os error \d+\)/, "").replace(/:\s*(mkdir|open).*$/, "")}`;
}
