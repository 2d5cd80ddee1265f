/**
 * The real iptux, driven as a person would by the team's library
 * (../shared/tools/iptux_drive.sh: xdotool, D-Bus actions, AT-SPI).
 */
import { createLan, type LanHost, lanUnavailable, sh } from "../../scripts/lan.ts";
import { DaemonProcess, killAll, tempDataDir } from "./daemon_process.ts";

/** The team's iptux driver: $IPTUX_DRIVE, else ../shared/tools beside this clone, else /work/shared/tools. */
const DRIVER = [
  Deno.env.get("IPTUX_DRIVE"),
  new URL("../../../shared/tools/iptux_drive.sh", import.meta.url).pathname,
  "/work/shared/tools/iptux_drive.sh",
].find((p) => {
  try {
    return p !== undefined && Deno.statSync(p).isFile;
  } catch {
    return false;
  }
}) ?? "../shared/tools/iptux_drive.sh";

/**
 * Our attach step, sourced after the driver so that it replaces the driver's: it waits for the file
 * chooser to take the typed path before pressing Return, and clicks Open if Return did not take
 * (see the file's header for why).
 */
const ATTACH = new URL("./iptux_attach.sh", import.meta.url).pathname;

/** Why the real-iptux tests cannot run here, or undefined. */
export async function iptuxUnavailable(): Promise<string | undefined> {
  const lan = await lanUnavailable();
  if (lan) return lan;
  try {
    await Deno.stat(DRIVER);
  } catch {
    return `${DRIVER} is not here`;
  }
  try {
    await sh("bash", ["-c", `IDRV_NO_INSTALL=1; source ${DRIVER}; iptux_drive_deps`]);
  } catch (e) {
    return `iptux_drive's tools are missing: ${(e as Error).message.split("\n")[0]}`;
  }
  return undefined;
}

/** Runs iptux_drive.sh functions in one bash, with the run directory shared across calls. */
export function driver(run: string) {
  return async (script: string, timeoutS = 120): Promise<string> => {
    const p = new Deno.Command("timeout", {
      args: [
        String(timeoutS),
        "bash",
        "-c",
        `export IDRV_RUN=${run} IDRV_NO_INSTALL=1; source '${DRIVER}' && source '${ATTACH}'; ${script}`,
      ],
      stdout: "piped",
      stderr: "piped",
    });
    const out = await p.output();
    const text = new TextDecoder().decode(out.stdout);
    if (!out.success) throw new Error(`iptux_drive: ${script}\n${text}${new TextDecoder().decode(out.stderr)}`);
    return text;
  };
}

/** What {@link withIptuxAndLanchat} gives its test. */
export interface IptuxLan {
  /** Runs iptux_drive.sh functions; the iptux instance is `A`, nicknamed iptuxuser. */
  drive: (script: string, timeoutS?: number) => Promise<string>;
  /** lanchat `--ipmsg`, named alice, that has seen iptux join. */
  daemon: DaemonProcess;
  iptuxHost: LanHost;
  lanchatHost: LanHost;
}

/**
 * A real iptux in one namespace host and lanchat --ipmsg (with `daemonArgs`
 * too) in another, iptux joined at lanchat; then `test`; then both stopped
 * and the LAN removed, whatever happened.
 */
export async function withIptuxAndLanchat(daemonArgs: string[], test: (t: IptuxLan) => Promise<void>): Promise<void> {
  const lan = await createLan(2);
  const [iptuxHost, lanchatHost] = lan.hosts as [LanHost, LanHost];
  const run = Deno.makeTempDirSync({ prefix: "iptux-drive-" });
  const drive = driver(run);
  try {
    const display = 100 + Math.floor(Math.random() * 800);
    await drive(`iptux_drive_start A ${iptuxHost.ns} ${display} iptuxuser`);
    // The daemon's own interval (2 s), not a test's 500 ms: lanchat sends iptux a BR_ENTRY each interval, and iptux
    // 0.8.3, redrawing for each, crashed now and then (SIGSEGV, "Invalid text buffer iterator") while a dialog was open.
    const daemon = await new DaemonProcess(
      ["--name", "alice", "--data-dir", tempDataDir(), "--interval", "2s", "--ipmsg", ...daemonArgs],
      { netns: lanchatHost.ns },
    ).started();
    await daemon.waitFor((l) => /^IP Messenger peer joined/.test(l.message), 10_000, "iptux to join");
    await test({ drive, daemon, iptuxHost, lanchatHost });
  } finally {
    await drive("iptux_drive_stop_all").catch(() => "");
    await killAll();
    await lan.destroy();
    await Deno.remove(run, { recursive: true }).catch(() => {});
  }
}
