/**
 * `lanchat install`: puts a `lanchat` executable on PATH, so that a user
 * types `lanchat peers` (in about 0.1 s, with no task runner's noise) instead
 * of `npx -y deno@2.9.6 task lanchat peers` (0.55 s more, and a 300-character
 * line on stderr). README's one command runs it: `npx -y deno@2.9.6 task install`.
 *
 * What it writes, under `--prefix` (default `~/.local`):
 * - `lib/lanchat/deno`: the Deno runtime it ran under, linked or copied out of
 *   npx's cache (which npm may clean); nothing is downloaded;
 * - `bin/lanchat`: a shell launcher that `exec`s that runtime on this clone's
 *   `main.ts`, with exactly the permissions of deno.json's tasks (`start`'s
 *   for `lanchat daemon`, `lanchat`'s for the rest), so signals reach the
 *   daemon itself: SIGTERM says goodbye and exits 0;
 * - bash and zsh completion scripts (see completion.ts).
 *
 * @module
 */
import type { Command } from "commander";
import denoJson from "../../deno.json" with { type: "json" };
import { bashCompletion, zshCompletion } from "./completion.ts";

/** The flags (permissions, V8) of a deno.json task. */
export function taskFlags(task: "start" | "lanchat"): string[] {
  return denoJson.tasks[task].split(/\s+/).filter((w) => w.startsWith("--"));
}

/** Single-quotes a word for sh. */
export function shQuote(s: string): string {
  return `'${s.replaceAll("'", `'"'"'`)}'`;
}

/** The launcher script for a runtime at `deno` and a clone at `repo`. */
export function launcherScript(deno: string, repo: string): string {
  const run = (task: "start" | "lanchat") =>
    [shQuote(deno), "run", "--quiet", "--no-prompt", "--config", shQuote(`${repo}/deno.json`), ...taskFlags(task)]
      .join(" ");
  const main = shQuote(`${repo}/main.ts`);
  return `#!/bin/sh
# lanchat launcher, written by "lanchat install" for the clone in ${repo}
# (move or delete that clone and this stops working: run the install again).
# exec: the daemon gets signals itself (SIGTERM says goodbye, exits 0).
if [ "$1" = daemon ]; then
  exec ${run("start")} ${main} "$@"
fi
exec ${run("lanchat")} ${main} "$@"
`;
}

/** Where install puts things under a prefix. */
export function installPaths(prefix: string) {
  return {
    bin: `${prefix}/bin/lanchat`,
    runtime: `${prefix}/lib/lanchat/deno`,
    bash: `${prefix}/share/bash-completion/completions/lanchat`,
    zsh: `${prefix}/share/zsh/site-functions/_lanchat`,
  };
}

/** The clone this code runs from (main.ts's directory). */
export function repoDir(): string {
  return new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
}

/**
 * Installs the launcher, the runtime it needs and completion scripts under
 * `prefix`; returns what it did, one line each.
 */
export async function install(prefix: string, program: Command): Promise<string[]> {
  const paths = installPaths(prefix);
  const done: string[] = [];
  const exec = Deno.execPath();
  // Deno from npx lives in npm's cache, which `npm cache clean` removes: keep our own.
  let deno = exec;
  if (/[/\\]_npx[/\\]|[/\\]\.npm[/\\]/.test(exec)) {
    await Deno.mkdir(`${prefix}/lib/lanchat`, { recursive: true });
    await Deno.remove(paths.runtime).catch(() => {});
    try {
      await Deno.link(exec, paths.runtime);
      done.push(`linked the Deno runtime ${exec} to ${paths.runtime}`);
    } catch {
      await Deno.copyFile(exec, paths.runtime);
      await Deno.chmod(paths.runtime, 0o755);
      done.push(`copied the Deno runtime ${exec} to ${paths.runtime}`);
    }
    deno = paths.runtime;
  }
  await Deno.mkdir(`${prefix}/bin`, { recursive: true });
  await Deno.writeTextFile(paths.bin, launcherScript(deno, repoDir()), { mode: 0o755 });
  await Deno.chmod(paths.bin, 0o755);
  done.push(`wrote ${paths.bin}, which runs ${repoDir()}/main.ts`);
  const scripts: [string, string, string][] = [
    [paths.bash, bashCompletion(program), "bash"],
    [paths.zsh, zshCompletion(program), "zsh"],
  ];
  for (const [path, text, shell] of scripts) {
    await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
    await Deno.writeTextFile(path, text);
    done.push(`wrote ${shell} completion to ${path}`);
  }
  return done;
}

export function registerInstall(program: Command): void {
  program.command("install")
    .description("Install a lanchat command on PATH (a launcher for this clone), with bash and zsh completion")
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
