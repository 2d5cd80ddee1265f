/**
 * The self-contained copy `lanchat install` makes: everything the command
 * and the daemon read at run time, in one versioned folder of
 * `<prefix>/lib/lanchat/`, so that they start under any user, with any (or
 * no, or a read-only) HOME, and with no network:
 *
 * - `deno`: the runtime the install ran under (copied; hard-linked only when
 *   the installing user owns it and no one else may write it);
 * - `app/`: main.ts, src/, web/, deno.lock and a deno.json whose imports are
 *   only the npm packages the program uses (not the test tools), set to read
 *   them from `app/node_modules/`, which Deno fills from the installing
 *   user's npm cache (the network only for a package missing there);
 * - `deno_dir/`: the DENO_DIR the launcher sets, filled at install with the
 *   compiled modules. Measured with Deno 2.9.6: a user who cannot write it
 *   (anyone but the installer) opens its caches read-only and uses them
 *   (`lanchat --version` 0.16 s, as with a writable one); an empty or missing
 *   DENO_DIR costs 0.43 s a run and nothing else; with the default DENO_DIR
 *   Deno writes 8.7 MB into `~/.cache/deno` of each user, hence our own.
 *
 * `current` is a symbolic link to the folder in use, replaced by a rename once
 * the new folder is complete, so a reinstall never leaves a half copy in
 * use; the launcher resolves it once, so a daemon started from an older
 * folder keeps its own code, and a folder is removed only when no process
 * runs from it.
 *
 * @module
 */
import denoJson from "../../deno.json" with { type: "json" };
import { VERSION } from "../common/version.ts";
import { absolutePath } from "./service_unit.ts";

/** What the copy holds of the clone, besides node_modules. */
const APP_FILES = ["main.ts", "deno.lock", "src", "web"];

/** The flags (permissions, V8) of a deno.json task. */
export function taskFlags(task: "start" | "lanchat" | "install"): string[] {
  return denoJson.tasks[task].split(/\s+/).filter((w) => w.startsWith("--"));
}

/** The clone (or installed copy) this code runs from: main.ts's directory. */
export function repoDir(): string {
  return new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
}

/** The `deno run` words of an installed copy at `dir` (without the script's arguments). */
export function runWords(dir: string, task: "start" | "lanchat" | "install"): string[] {
  return [
    `${dir}/deno`,
    "run",
    "--quiet",
    "--no-prompt",
    "--cached-only",
    "--frozen",
    "--config",
    `${dir}/app/deno.json`,
    ...taskFlags(task),
    `${dir}/app/main.ts`,
  ];
}

/** The environment an installed copy at `dir` runs with. */
export function runEnv(dir: string): Record<string, string> {
  return { DENO_DIR: `${dir}/deno_dir`, DENO_NO_UPDATE_CHECK: "1" };
}

/** Runs a command; throws its stderr in words when it fails. */
async function must(what: string, cmd: string, args: string[], opts: Deno.CommandOptions = {}): Promise<string> {
  const out = await new Deno.Command(cmd, { ...opts, args, stdout: "piped", stderr: "piped" }).output();
  const dec = new TextDecoder();
  if (!out.success) {
    throw new Error(`Cannot ${what}: ${dec.decode(out.stderr).trim() || `exit code ${out.code}`}`);
  }
  return dec.decode(out.stdout);
}

/**
 * Copies a tree as files and folders, owned by the installing user. A
 * symbolic link is followed (its target copied), except a relative one that
 * stays inside `root` (node_modules' links to node_modules/.deno), kept as a
 * link: never a link out of the copy, which its owner could change.
 */
async function copyTree(from: string, to: string, root = from): Promise<void> {
  const info = await Deno.lstat(from);
  if (info.isSymlink) {
    const target = await Deno.readLink(from);
    const at = absolutePath(target, from.slice(0, from.lastIndexOf("/")));
    if (!target.startsWith("/") && within(at, root)) return await Deno.symlink(target, to);
  }
  const real = await Deno.stat(from);
  if (real.isFile) return await Deno.copyFile(from, to);
  if (!real.isDirectory) throw new Error(`Cannot copy ${from}: not a file or a folder`);
  await Deno.mkdir(to);
  for await (const e of Deno.readDir(from)) await copyTree(`${from}/${e.name}`, `${to}/${e.name}`, root);
}

/** Whether `path` is `dir` or inside it. */
function within(path: string, dir: string): boolean {
  return path === dir || path.startsWith(`${dir}/`);
}

/**
 * Makes every folder and file of the copy at `dir` readable (folders,
 * executables: runnable) by all and writable by its owner only, and checks
 * that `owner` (the installing user) owns every one and that every link
 * stays inside: a file of another user's in a copy root runs would let that
 * user run code as root.
 */
async function seal(dir: string, owner: number | null, path = dir): Promise<void> {
  const info = await Deno.lstat(path);
  if (info.isSymlink) {
    const to = await Deno.realPath(path);
    if (!within(to, await Deno.realPath(dir))) throw new Error(`Cannot install: ${path} links out of the copy`);
    return;
  }
  if (owner !== null && info.uid !== owner) {
    throw new Error(`Cannot install: ${path} is owned by uid ${info.uid}, not by the installing user (uid ${owner})`);
  }
  const mode = (info.mode ?? 0) & 0o7777;
  const want = ((info.isDirectory || mode & 0o100 ? mode | 0o555 : mode | 0o444) & ~0o022) & ~0o6000;
  if (want !== mode) await Deno.chmod(path, want);
  if (info.isDirectory) { for await (const e of Deno.readDir(path)) await seal(dir, owner, `${path}/${e.name}`); }
}

/** The npm packages (`name@version`) main.ts loads, asked of Deno's own module graph. */
async function runtimePackages(source: string): Promise<Set<string>> {
  const json = await must("list the program's modules (deno info)", Deno.execPath(), [
    "info",
    "--json",
    "--config",
    `${source}/deno.json`,
    `${source}/main.ts`,
  ]);
  const graph = JSON.parse(json) as { modules: { kind?: string; npmPackage?: string }[] };
  return new Set(graph.modules.flatMap((m) => m.kind === "npm" && m.npmPackage ? [m.npmPackage] : []));
}

/** Source deno.json, with only the imports in `packages`, reading npm packages from app/node_modules. */
function appConfig(source: string, packages: Set<string>): string {
  const config = readConfig(source);
  config.imports = Object.fromEntries(
    Object.entries(config.imports).filter(([, to]) => packages.has(to.replace(/^npm:/, ""))),
  );
  config.nodeModulesDir = "manual";
  return JSON.stringify(config, null, 2) + "\n";
}

/** The deno.json of `source`. */
function readConfig(source: string): { imports: Record<string, string>; nodeModulesDir?: string } {
  return JSON.parse(Deno.readTextFileSync(`${source}/deno.json`));
}

/** Whether `source` is a copy this install made (its deno.json reads npm packages from its node_modules). */
function isInstalledCopy(source: string): boolean {
  return readConfig(source).nodeModulesDir === "manual";
}

/** A fresh name for a version folder: the version, then the time. */
function versionName(): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, "").replace(/\.(\d+)Z$/, "$1Z");
  return `${VERSION}-${stamp}`;
}

/** Whether a folder name is one of ours (made by {@link versionName}). */
const VERSION_DIR = /^\d[^/]*-\d{8}T\d{9}Z$/;

/**
 * The command lines of every process this user may see, or undefined when
 * they cannot be listed. Through sh: Deno lets only --allow-all read /proc.
 */
async function commandLines(): Promise<string[] | undefined> {
  const script = `for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' <"$f" 2>/dev/null; echo; done`;
  try {
    const out = await new Deno.Command("sh", { args: ["-c", script], stdout: "piped", stderr: "null" }).output();
    const lines = new TextDecoder().decode(out.stdout).split("\n").filter(Boolean);
    // At least this install itself runs: an empty list means /proc could not be read.
    return out.success && lines.length > 0 ? lines : undefined;
  } catch {
    return undefined;
  }
}

/** A copy made by {@link buildCopy}, not yet in use. */
export interface Copy {
  /** Its folder name in lib (`<version>-<time>`). */
  name: string;
  /** Its path. */
  dir: string;
}

/**
 * Makes a new self-contained copy of `source` in `lib` (`<prefix>/lib/lanchat`)
 * and checks that it runs; `current` is not touched. On any failure the
 * partial copy is removed and the error thrown.
 */
export async function buildCopy(lib: string, done: string[], source = repoDir()): Promise<Copy> {
  const name = versionName();
  const dir = `${lib}/${name}`;
  await Deno.mkdir(dir);
  try {
    const owner = (await Deno.stat(dir)).uid;
    // The runtime: npx's copy lives in npm's cache (which `npm cache clean` removes), a user's own may be unreadable to
    // others. Linked only when the installing user owns it and no one else may write it: root installing from a
    // user's own install must not run a file that user can rewrite.
    const exec = Deno.execPath();
    const info = await Deno.stat(exec);
    if (info.uid === owner && ((info.mode ?? 0) & 0o022) === 0) {
      await Deno.link(exec, `${dir}/deno`).catch(() => Deno.copyFile(exec, `${dir}/deno`));
    } else await Deno.copyFile(exec, `${dir}/deno`);
    await Deno.mkdir(`${dir}/app`);
    for (const f of APP_FILES) await copyTree(`${source}/${f}`, `${dir}/app/${f}`);
    let packages: number;
    if (isInstalledCopy(source)) {
      // An installed copy installing itself (`lanchat install --prefix …`): its config and packages are made already.
      await Deno.copyFile(`${source}/deno.json`, `${dir}/app/deno.json`);
      await copyTree(`${source}/node_modules`, `${dir}/app/node_modules`);
      packages = Object.keys(readConfig(source).imports).length;
    } else {
      const used = await runtimePackages(source);
      packages = used.size;
      await Deno.writeTextFile(`${dir}/app/deno.json`, appConfig(source, used));
      await must("copy the npm packages into the install (deno install)", Deno.execPath(), [
        "install",
        "--quiet",
        "--node-modules-dir=auto",
        "--config",
        `${dir}/app/deno.json`,
        "--entrypoint",
        `${dir}/app/main.ts`,
      ], { cwd: `${dir}/app` });
    }
    // Compile once, so that users who cannot write deno_dir do not compile at every start. Twice: the
    // second run stores V8's code cache of what the first compiled. Each run must print the version.
    for (let i = 0; i < 2; i++) {
      const [cmd, ...args] = runWords(dir, "lanchat");
      const out = await must("run the installed copy", cmd!, [...args, "--version"], { env: runEnv(dir), cwd: dir });
      if (out.trim() !== VERSION) throw new Error(`Cannot run the installed copy: it printed ${JSON.stringify(out)}`);
    }
    await checkCompiled(dir);
    await seal(dir, owner);
    done.push(`copied lanchat ${VERSION} and its ${packages} npm packages to ${dir}`);
    return { name, dir };
  } catch (e) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw e;
  }
}

/**
 * Checks that deno_dir holds the compiled code: Deno says nothing when it
 * cannot write its caches (a full disk), and a copy without them costs every
 * user of it 0.4 s a run. Probed by a small file written next to them.
 */
async function checkCompiled(dir: string): Promise<void> {
  const probe = `${dir}/deno_dir/.written`;
  await Deno.writeFile(probe, new Uint8Array(64 * 1024));
  await Deno.remove(probe);
  let files = 0;
  const count = async (at: string): Promise<void> => {
    for await (const e of Deno.readDir(at)) {
      if (e.isDirectory) await count(`${at}/${e.name}`);
      else files++;
    }
  };
  await count(`${dir}/deno_dir`).catch(() => {});
  if (files === 0) throw new Error(`Cannot install: Deno wrote no compiled code into ${dir}/deno_dir`);
}

/** Switches `lib/current` to a copy, by renaming a new link over it: a reader sees the old or the new one. */
export async function switchCurrent(lib: string, copy: Copy, done: string[]): Promise<void> {
  const link = `${lib}/.current-${copy.name}`;
  await Deno.symlink(copy.name, link);
  await Deno.rename(link, `${lib}/current`);
  done.push(`switched ${lib}/current to ${copy.name}`);
}

/**
 * Removes the copies in `lib` older than `copy` that no process runs from
 * (compared by their real path: the launcher runs the copy through `cd -P`).
 * A newer copy is another install's, which may not be in use yet: kept.
 */
export async function removeOldCopies(lib: string, copy: Copy, done: string[]): Promise<void> {
  const running = await commandLines();
  const real = await Deno.realPath(lib);
  for await (const e of Deno.readDir(lib)) {
    if (e.name === copy.name || !VERSION_DIR.test(e.name) || stampOf(e.name) > stampOf(copy.name)) continue;
    const old = `${lib}/${e.name}`;
    if (!running || running.some((line) => line.includes(`${old}/`) || line.includes(`${real}/${e.name}/`))) {
      done.push(
        `kept ${old}: ${running ? "a lanchat process runs from it" : "cannot tell whether a process runs from it"}`,
      );
      continue;
    }
    await Deno.remove(old, { recursive: true });
    done.push(`removed ${old}`);
  }
  // The launcher of the previous layout ran lib/lanchat/deno on the clone: no longer used (a running process keeps its inode).
  await Deno.remove(`${lib}/deno`).then(() => done.push(`removed ${lib}/deno (the previous layout)`), () => {});
}

/** The time stamp of a copy's folder name (sortable as text). */
function stampOf(name: string): string {
  return name.slice(name.lastIndexOf("-") + 1);
}

/**
 * Runs `fn` holding the install lock of `lib` (`<prefix>/lib/lanchat.lock`):
 * two installs into one prefix at once take turns instead of each removing
 * the other's new copy.
 */
export async function withInstallLock<T>(lib: string, fn: () => Promise<T>): Promise<T> {
  await Deno.mkdir(lib, { recursive: true });
  const file = await Deno.open(`${lib}.lock`, { read: true, write: true, create: true, mode: 0o644 });
  try {
    await file.lock(true);
    return await fn();
  } finally {
    file.close();
  }
}
