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
import { installApp, runEnv, runWords } from "./install_app.ts";

/** Single-quotes a word for sh. */
export function shQuote(s: string): string {
  return `'${s.replaceAll("'", `'"'"'`)}'`;
}

/** The launcher script for an install whose copies live in `lib` (`<prefix>/lib/lanchat`). */
export function launcherScript(lib: string): string {
  // "$dir" in the script: the copy `current` pointed to when the launcher started.
  const mark = "\0";
  const word = (w: string) =>
    w.startsWith(mark) ? `"$dir${w.slice(mark.length)}"` : /^[\w@%+=:,./-]+$/.test(w) ? w : shQuote(w);
  const run = (task: "start" | "lanchat" | "install") => runWords(mark, task).map(word).join(" ");
  const env = Object.entries(runEnv(mark)).map(([k, v]) => `${k}=${word(v)}`).join(" ");
  const current = shQuote(`${lib}/current`);
  return `#!/bin/sh
# lanchat launcher, written by "lanchat install": runs the self-contained copy
# ${lib}/current links to (its own Deno, code and npm packages; no
# network, no HOME needed). The link is read once: a reinstall while this runs
# does not change the code under it.
dir=$(cd -P ${current} 2>/dev/null && pwd) || {
  echo "lanchat: no installed copy at ${lib.replaceAll('"', "")}/current: run lanchat install again" >&2
  exit 1
}
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

/** Writes a file by renaming a complete one over it: a reader sees the old or the new, never half. */
async function writeAtomically(path: string, text: string, mode: number): Promise<void> {
  const tmp = `${path}.new-${Deno.pid}`;
  await Deno.writeTextFile(tmp, text, { mode });
  await Deno.chmod(tmp, mode);
  await Deno.rename(tmp, path);
}

/**
 * Installs a self-contained copy, the launcher that runs it and completion
 * scripts under `prefix`; returns what it did, one line each.
 */
export async function install(prefix: string, program: Command): Promise<string[]> {
  const paths = installPaths(prefix);
  const done = await installApp(paths.lib);
  await Deno.mkdir(`${prefix}/bin`, { recursive: true });
  await writeAtomically(paths.bin, launcherScript(paths.lib), 0o755);
  done.push(`wrote ${paths.bin}, which runs ${paths.lib}/current`);
  const scripts: [string, string, string][] = [
    [paths.bash, bashCompletion(program), "bash"],
    [paths.zsh, zshCompletion(program), "zsh"],
  ];
  for (const [path, text, shell] of scripts) {
    await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
    await writeAtomically(path, text, 0o644);
    done.push(`wrote ${shell} completion to ${path}`);
  }
  return done;
}

export function registerInstall(program: Command): void {
  program.command("install")
    .description("Install lanchat (a self-contained copy and a launcher on PATH), with bash and zsh completion")
    .option("--prefix <dir>", "where to install: <dir>/bin/lanchat (default: ~/.local)")
    .action(async (opts: { prefix?: string }) => {
      const home = Deno.env.get("HOME");
      const prefix = opts.prefix ?? (home ? `${home}/.local` : undefined);
      if (!prefix) throw new Error("HOME is not set: pass --prefix DIR");
      for (const line of await install(prefix.replace(/\/+$/, ""), program)) console.log(line);
      const dir = `${prefix.replace(/\/+$/, "")}/bin`;
      const onPath = (Deno.env.get("PATH") ?? "").split(":").includes(dir);
      console.log(
        onPath
          ? `lanchat is ready: try "lanchat peers" (start the daemon with "lanchat daemon", or as a service with "lanchat service install")`
          : `${dir} is not on your PATH: add it (e.g. echo 'export PATH="${dir}:$PATH"' >> ~/.profile), then try "lanchat peers"`,
      );
      console.log(
        `zsh: add "fpath=(${prefix}/share/zsh/site-functions $fpath)" before compinit in ~/.zshrc; bash picks the completion up by itself (bash-completion)`,
      );
    });
}
