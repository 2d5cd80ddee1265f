/**
 * `lanchat service install|uninstall|print`: runs the daemon as a systemd
 * service, a user unit by default (`~/.config/systemd/user/lanchat.service`,
 * started with the user's session) or a system unit with `--system`
 * (`/etc/systemd/system/lanchat.service`, started at boot). The unit runs
 * the installed launcher (`lanchat install`), so systemd's SIGTERM reaches
 * the daemon, which says goodbye to every peer and exits 0. Every step is
 * printed; when systemd cannot be reached (no user session, a container),
 * the unit is still written and the commands to enable it are printed.
 *
 * @module
 */
import type { Command } from "commander";
import { installPaths } from "./install.ts";
import { EXIT, outcome, UsageError } from "./options.ts";
import {
  absolutePath,
  checkDaemonArgs,
  inHome,
  systemUnitOptions,
  UNIT_NAME,
  type UnitOptions,
  unitText,
} from "./service_unit.ts";

export { UNIT_NAME };

/** The unit for `lanchat service install|print`'s flags; checks them first (see service_unit.ts). */
function buildUnit(
  daemonArgs: string[],
  opts: { system?: boolean; userName?: string; launcher?: string },
): { text: string; launcher: string } {
  const system = opts.system === true;
  const launcher = absolutePath(opts.launcher ?? defaultLauncher(system), Deno.cwd());
  const checked = checkDaemonArgs(daemonArgs, Deno.cwd());
  const unit: UnitOptions = system
    ? systemUnitOptions(launcher, checked, opts.userName)
    : { launcher, daemonArgs: checked.args, system };
  return { text: unitText(unit), launcher };
}

/**
 * The launcher a unit runs by default: the one running this command when it
 * is an installed one (it sets LANCHAT_LAUNCHER; for a system unit, unless it
 * is in a home folder), else the user's (~/.local), or for a system unit the
 * system-wide one (/usr/local).
 */
function defaultLauncher(system: boolean): string {
  const running = Deno.env.get("LANCHAT_LAUNCHER");
  if (running?.startsWith("/") && !(system && inHome(running))) return running;
  if (system) return installPaths("/usr/local").bin;
  const home = Deno.env.get("HOME");
  if (!home) throw new UsageError("HOME is not set: cannot find your lanchat launcher; pass --launcher PATH");
  return installPaths(`${home}/.local`).bin;
}

/** Where the unit goes. */
export function unitPath(system: boolean, home: string | undefined): string {
  if (system) return `/etc/systemd/system/${UNIT_NAME}`;
  const config = Deno.env.get("XDG_CONFIG_HOME") ?? (home ? `${home}/.config` : undefined);
  if (!config) throw new Error("HOME is not set: cannot find the user's systemd directory; use --system");
  return `${config}/systemd/user/${UNIT_NAME}`;
}

/** Runs systemctl; returns its failure in words, or undefined when it succeeded. */
async function systemctl(system: boolean, args: string[]): Promise<string | undefined> {
  const all = system ? args : ["--user", ...args];
  try {
    const out = await new Deno.Command("systemctl", { args: all, stdout: "piped", stderr: "piped" }).output();
    if (out.success) return undefined;
    return new TextDecoder().decode(out.stderr).trim() || `exit code ${out.code}`;
  } catch (e) {
    return e instanceof Deno.errors.NotFound ? "systemctl is not installed" : (e as Error).message;
  }
}

export function registerService(program: Command): void {
  const service = program.command("service")
    .description("Run the daemon as a systemd service (a user unit; --system for a system one)");
  service.command("install")
    .description("Write lanchat.service, then enable and start it; flags after -- go to lanchat daemon")
    .option(
      "--system",
      "a system unit in /etc/systemd/system (started at boot, sandboxed, state in /var/lib/lanchat; needs root " +
        "and a system-wide install: sudo lanchat install --prefix /usr/local)",
    )
    .option("--user-name <name>", "with --system: run as this user (default: a dynamic user, DynamicUser=yes)")
    .option(
      "--launcher <path>",
      "the lanchat launcher to run (default: ~/.local/bin/lanchat; with --system /usr/local/bin/lanchat)",
    )
    .option("--no-enable", "only write the unit")
    .argument("[daemon-flags...]", "flags for lanchat daemon, after --")
    .action(
      async (
        daemonArgs: string[],
        opts: { system?: boolean; userName?: string; launcher?: string; enable: boolean },
      ) => {
        const home = Deno.env.get("HOME");
        const system = opts.system === true;
        const { text, launcher } = buildUnit(daemonArgs, opts);
        try {
          await Deno.stat(launcher);
        } catch {
          throw new Error(
            `No lanchat launcher at ${launcher}: run "${
              system ? "sudo lanchat install --prefix /usr/local" : "lanchat install"
            }" first, or pass --launcher PATH`,
          );
        }
        if (system) await checkReadableByAll(launcher);
        const path = unitPath(system, home);
        try {
          await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
          await Deno.writeTextFile(path, text);
        } catch (e) {
          if (!(e instanceof Deno.errors.PermissionDenied)) throw e;
          throw new Error(
            `Cannot write ${path}: permission denied${
              system ? ": a system unit needs root (sudo lanchat service install --system)" : ""
            }`,
          );
        }
        console.log(`wrote ${path}:`);
        console.log(text.replace(/^/gm, "  ").trimEnd());
        if (!opts.enable) return;
        const scope = system ? "" : " --user";
        for (const args of [["daemon-reload"], ["enable", "--now", UNIT_NAME]]) {
          const failed = await systemctl(system, args);
          if (failed) {
            console.error(
              `lanchat: systemctl${scope} ${args.join(" ")} failed: ${failed}\n` +
                `The unit is written; once systemd runs for you, enable it with: systemctl${scope} daemon-reload && systemctl${scope} enable --now ${UNIT_NAME}`,
            );
            outcome.code = EXIT.error;
            return;
          }
          console.log(`ran systemctl${scope} ${args.join(" ")}`);
        }
        console.log(
          `lanchat runs as a service: systemctl${scope} status ${UNIT_NAME}; logs: journalctl${
            system ? "" : " --user"
          } -u ${UNIT_NAME}`,
        );
      },
    );
  service.command("uninstall")
    .description("Stop and disable lanchat.service and remove it")
    .option("--system", "the system unit")
    .action(async (opts: { system?: boolean }) => {
      const system = opts.system === true;
      const path = unitPath(system, Deno.env.get("HOME"));
      const failed = await systemctl(system, ["disable", "--now", UNIT_NAME]);
      if (failed) console.error(`lanchat: systemctl disable failed (${failed}); removing the unit anyway`);
      try {
        await Deno.remove(path);
        console.log(`removed ${path}`);
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
        console.log(`no unit at ${path}`);
      }
      await systemctl(system, ["daemon-reload"]);
    });
  service.command("print")
    .description("Print the unit lanchat service install would write")
    .option("--system", "a system unit")
    .option("--user-name <name>", "with --system: run as this user (default: a dynamic user, DynamicUser=yes)")
    .option("--launcher <path>", "the lanchat launcher to run")
    .argument("[daemon-flags...]", "flags for lanchat daemon, after --")
    .action((daemonArgs: string[], opts: { system?: boolean; userName?: string; launcher?: string }) => {
      console.log(buildUnit(daemonArgs, opts).text.trimEnd());
    });
}

/**
 * Refuses a launcher the service's user could not run, or that someone
 * other than root (or you) could change under it: the launcher, and the copy
 * it runs (`<prefix>/lib/lanchat/current`), with every folder above them
 * (their real paths), must be readable by all (a+rX), as `lanchat install`
 * leaves them under a umask of 022, owned by root or you, and writable by no
 * one else (a folder writable by all only with the sticky bit, as /tmp).
 */
async function checkReadableByAll(launcher: string): Promise<void> {
  const copy = `${launcher.slice(0, launcher.lastIndexOf("/bin/"))}/lib/lanchat/current`;
  // A launcher of your own (not written by lanchat install): only it is checked.
  const ours = await Deno.stat(copy).then(() => true, () => false);
  const paths = ours ? [launcher, `${copy}/deno`, `${copy}/app/main.ts`] : [launcher];
  const me = Deno.uid();
  for (const path of paths) {
    const real = await Deno.realPath(path);
    let at = "";
    for (const part of ["", ...real.split("/").slice(1)]) {
      at = part === "" ? "/" : `${at === "/" ? "" : at}/${part}`;
      const info = await Deno.stat(at);
      const mode = info.mode ?? 0;
      const need = info.isDirectory || (at === real && !real.endsWith(".ts")) ? 0o005 : 0o004;
      if ((mode & need) !== need) {
        throw new Error(
          `The service's user cannot read ${at} (mode ${(mode & 0o777).toString(8)}): run chmod a+rX on it`,
        );
      }
      const sticky = info.isDirectory && (mode & 0o1000) !== 0;
      if ((info.uid !== 0 && info.uid !== me) || (mode & 0o022 && !(sticky && info.uid === 0))) {
        throw new Error(
          `The service would run ${real}, and ${at} (owner uid ${info.uid}, mode ${(mode & 0o7777).toString(8)}) ` +
            `lets someone other than root change it: install lanchat where only root can write ` +
            `(sudo lanchat install --prefix /usr/local)`,
        );
      }
    }
  }
}
