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
import { EXIT, outcome } from "./options.ts";

export const UNIT_NAME = "lanchat.service";

export interface UnitOptions {
  /** The `lanchat` launcher to run. */
  launcher: string;
  /** Extra `lanchat daemon` flags. */
  daemonArgs: string[];
  system: boolean;
  /** For a system unit: the user it runs as. */
  user?: string;
}

/** Quotes a word for a systemd command line. */
function unitQuote(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `"${s.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
}

/** The unit file's text. */
export function unitText(o: UnitOptions): string {
  const exec = [o.launcher, "daemon", ...o.daemonArgs].map(unitQuote).join(" ");
  return `[Unit]
Description=lanchat: LAN discovery and messaging daemon
After=network-online.target
Wants=network-online.target

[Service]
Type=exec
ExecStart=${exec}
${o.system && o.user ? `User=${o.user}\n` : ""}# SIGTERM makes the daemon say goodbye to every peer and exit 0.
KillSignal=SIGTERM
TimeoutStopSec=10
Restart=on-failure
RestartSec=2
# Room for the HTTP connection cap (--http-max-connections, 256) and more.
LimitNOFILE=4096

[Install]
WantedBy=${o.system ? "multi-user.target" : "default.target"}
`;
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
    .option("--system", "a system unit in /etc/systemd/system (started at boot; needs root)")
    .option("--user-name <name>", "with --system: the user the daemon runs as (default: $USER)")
    .option("--launcher <path>", "the lanchat launcher to run (default: the one lanchat install wrote)")
    .option("--no-enable", "only write the unit")
    .argument("[daemon-flags...]", "flags for lanchat daemon, after --")
    .action(
      async (
        daemonArgs: string[],
        opts: { system?: boolean; userName?: string; launcher?: string; enable: boolean },
      ) => {
        const home = Deno.env.get("HOME");
        const system = opts.system === true;
        const launcher = opts.launcher ?? installPaths(`${home ?? ""}/.local`).bin;
        try {
          await Deno.stat(launcher);
        } catch {
          throw new Error(`No lanchat launcher at ${launcher}: run "lanchat install" first, or pass --launcher PATH`);
        }
        const path = unitPath(system, home);
        const text = unitText({ launcher, daemonArgs, system, user: opts.userName ?? Deno.env.get("USER") });
        await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
        await Deno.writeTextFile(path, text);
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
    .option("--user-name <name>", "with --system: the user the daemon runs as (default: $USER)")
    .option("--launcher <path>", "the lanchat launcher to run")
    .argument("[daemon-flags...]", "flags for lanchat daemon, after --")
    .action((daemonArgs: string[], opts: { system?: boolean; userName?: string; launcher?: string }) => {
      const launcher = opts.launcher ?? installPaths(`${Deno.env.get("HOME") ?? ""}/.local`).bin;
      console.log(
        unitText({
          launcher,
          daemonArgs,
          system: opts.system === true,
          user: opts.userName ?? Deno.env.get("USER"),
        }).trimEnd(),
      );
    });
}
