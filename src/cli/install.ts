/**
 * `lanchat install`: puts a `lanchat` executable on PATH, so that a user
 * types `lanchat peers` (in about 0.15 s, with no task runner's noise) instead
 * of `npx -y deno@2.9.6 task lanchat peers` (0.55 s more, and a 300-character
 * line on stderr). README's one command runs it: `npx -y deno@2.9.6 task install`.
 *
 * What it writes, under `--prefix` (default `~/.local`):
 * - `lib/lanchat/<version>-<time>/`, a self-contained copy (the runtime, the
 *   code, its npm packages, its compiled modules: see install_app.ts), and
 *   `lib/lanchat/current`, a link to it, switched atomically on reinstall;
 * - `bin/lanchat`: a shell launcher that `exec`s that copy's runtime on its
 *   `main.ts` with `--cached-only` and exactly the permissions of deno.json's
 *   tasks (`start`'s for `lanchat daemon`, `install`'s for `lanchat install`,
 *   `lanchat`'s for the rest), so signals reach the daemon itself: SIGTERM
 *   says goodbye and exits 0; it works under any user who can read the prefix,
 *   with no network and no HOME;
 * - bash and zsh completion scripts (see completion.ts).
 *
 * @module
 */
import type { Command } from "commander";
import { bashCompletion, zshCompletion } from "./completion.ts";
import { UsageError } from "./options.ts";
import {
  buildCopy,
  type Copy,
  removeOldCopies,
  runEnv,
  runWords,
  switchCurrent,
  withInstallLock,
} from "./install_app.ts";
import { absolutePath } from "./service_unit.ts";

/** Single-quotes a word for sh. */
export function shQuote(s: string): string {
  return `'${s.replaceAll("'", `'"'"'`)}'`;
}

/** The PATH the launcher sets when it has none (`env -i`, some service managers): Deno needs one to run tools. */
const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/**
 * The launcher script for an install whose copies live in `lib`
 * (`<prefix>/lib/lanchat`), at `bin` (`<prefix>/bin/lanchat`). Paths enter
 * the script only single-quoted, in assignments: no character of a prefix
 * (a newline, `$(…)`, a quote) can become shell code.
 */
export function launcherScript(lib: string, bin = `${lib.replace(/\/lib\/lanchat$/, "")}/bin/lanchat`): string {
  // "$dir" in the script: the copy `current` pointed to when the launcher started.
  const mark = "\0";
  const word = (w: string) =>
    w.startsWith(mark) ? `"$dir${w.slice(mark.length)}"` : /^[\w@%+=:,./-]+$/.test(w) ? w : shQuote(w);
  const run = (task: "start" | "lanchat" | "install") => runWords(mark, task).map(word).join(" ");
  const env = Object.entries(runEnv(mark)).map(([k, v]) => `${k}=${word(v)}`).join(" ");
  return `#!/bin/sh
# lanchat launcher, written by "lanchat install": runs the self-contained copy
# $lib/current links to (its own Deno, code and npm packages; no network, no
# HOME needed). The link is read once: a reinstall while this runs does not
# change the code under it.
lib=${shQuote(lib)}
dir=$(cd -P "$lib/current" 2>/dev/null && pwd) || {
  printf 'lanchat: no installed copy at %s/current: run lanchat install again\\n' "$lib" >&2
  exit 1
}
export PATH="\${PATH:-${DEFAULT_PATH}}"
export LANCHAT_LAUNCHER=${shQuote(bin)}
export ${env}
# exec: the daemon gets signals itself (SIGTERM says goodbye, exits 0).
case "$1" in
  daemon) exec ${run("start")} "$@" ;;
  install) exec ${run("install")} "$@" ;;
esac
exec ${run("lanchat")} "$@"
`;
}

/** Where install puts things under a prefix. */
export function installPaths(prefix: string) {
  return {
    bin: `${prefix}/bin/lanchat`,
    lib: `${prefix}/lib/lanchat`,
    bash: `${prefix}/share/bash-completion/completions/lanchat`,
    zsh: `${prefix}/share/zsh/site-functions/_lanchat`,
  };
}

/** A file written in full next to where it goes, renamed over it by {@link place}: a reader sees the old or the new. */
async function prepare(path: string, text: string, mode: number): Promise<{ tmp: string; path: string }> {
  await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  const tmp = `${path}.new-${Deno.pid}`;
  await Deno.writeTextFile(tmp, text, { mode });
  await Deno.chmod(tmp, mode);
  return { tmp, path };
}

/**
 * Installs a self-contained copy, the launcher that runs it and completion
 * scripts under `prefix` (absolute); returns what it did, one line each.
 * Everything is written and checked before anything in use changes: on a
 * failure (a full disk) the new copy and files are removed, the previous
 * install works on as before, and the error says so.
 */
export async function install(prefix: string, program: Command): Promise<string[]> {
  const paths = installPaths(prefix);
  return await withInstallLock(paths.lib, async () => {
    const done: string[] = [];
    let copy: Copy | undefined;
    const files: { tmp: string; path: string }[] = [];
    try {
      copy = await buildCopy(paths.lib, done);
      files.push(await prepare(paths.bin, launcherScript(paths.lib, paths.bin), 0o755));
      files.push(await prepare(paths.bash, bashCompletion(program), 0o644));
      files.push(await prepare(paths.zsh, zshCompletion(program), 0o644));
    } catch (e) {
      for (const f of files) await Deno.remove(f.tmp).catch(() => {});
      if (copy) await Deno.remove(copy.dir, { recursive: true }).catch(() => {});
      throw new Error(`${(e as Error).message}; nothing was changed: the previous install, if any, works as before`, {
        cause: e,
      });
    }
    await switchCurrent(paths.lib, copy, done);
    for (const f of files) await Deno.rename(f.tmp, f.path);
    done.push(`wrote ${paths.bin}, which runs ${paths.lib}/current`);
    done.push(`wrote bash completion to ${paths.bash}`, `wrote zsh completion to ${paths.zsh}`);
    await removeOldCopies(paths.lib, copy, done);
    return done;
  });
}

export function registerInstall(program: Command): void {
  program.command("install")
    .description("Install lanchat (a self-contained copy and a launcher on PATH), with bash and zsh completion")
    .option("--prefix <dir>", "where to install: <dir>/bin/lanchat (default: ~/.local)")
    .action(async (opts: { prefix?: string }) => {
      const home = Deno.env.get("HOME");
      const prefix = opts.prefix ?? (home ? `${home}/.local` : undefined);
      if (!prefix) throw new Error("HOME is not set: pass --prefix DIR");
      if (/\p{Cc}/u.test(prefix)) {
        throw new UsageError(`--prefix ${JSON.stringify(prefix)}: a control character in a path`);
      }
      // Absolute and normalised: the copy is made by commands run in other folders.
      const at = absolutePath(prefix, Deno.cwd());
      for (const line of await install(at, program)) console.log(line);
      const dir = `${at}/bin`;
      const onPath = (Deno.env.get("PATH") ?? "").split(":").includes(dir);
      console.log(
        onPath
          ? `lanchat is ready: try "lanchat peers" (start the daemon with "lanchat daemon", or as a service with "lanchat service install")`
          : `${dir} is not on your PATH: add it (e.g. echo 'export PATH="${dir}:$PATH"' >> ~/.profile), then try "lanchat peers"`,
      );
      console.log(
        `zsh: add "fpath=(${at}/share/zsh/site-functions $fpath)" before compinit in ~/.zshrc; bash picks the completion up by itself (bash-completion)`,
      );
    });
}
