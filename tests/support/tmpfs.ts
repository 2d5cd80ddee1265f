/**
 * A small file system that fills up, for the full-disk tests: a tmpfs
 * mounted over a temporary folder (Linux, root), and a file that takes
 * every byte left in it.
 */

/** Why a tmpfs cannot be mounted here (the test is then ignored), or undefined. */
export const tmpfsUnavailable = Deno.build.os !== "linux"
  ? "tmpfs needs Linux"
  : Deno.uid() !== 0
  ? "mount needs root"
  : undefined;

async function run(cmd: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(cmd, { args, stderr: "piped" }).output();
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
}

/** Mounts a tmpfs of `size` (as mount's `size=` takes it: `4m`, `600m`) over the folder `dir`. */
export async function mountTmpfs(dir: string, size: string): Promise<void> {
  await run("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir]);
}

/** Unmounts what {@link mountTmpfs} mounted over `dir` and removes the folder; never throws (for `finally`). */
export async function removeTmpfs(dir: string): Promise<void> {
  await run("umount", [dir]).catch(() => {});
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}

/** Writes zeros to `path` until the file system says it is full. */
export async function fillUp(path: string): Promise<void> {
  const file = await Deno.open(path, { write: true, create: true });
  const chunk = new Uint8Array(16 * 1024);
  try {
    while (true) await file.write(chunk);
  } catch (e) {
    if (!/No space left|os error 28/i.test((e as Error).message)) throw e;
  } finally {
    file.close();
  }
}
