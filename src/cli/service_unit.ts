/**
 * The systemd unit `lanchat service` writes, as text, from checked flags.
 *
 * The daemon flags after `--` are parsed by the daemon's own parser
 * ({@link parseDaemonArgs}) before anything is written: a flag the daemon
 * would refuse is refused here with its message, instead of a unit that
 * restarts in a loop. Every flag whose value is a path (its placeholder in
 * the parser says so: `<dir>`, `<path>`, `<file>`) is made absolute against
 * the folder the command runs in, since systemd starts the daemon in `/`.
 * A flag the parser took from the environment (`LANCHAT_KEY_FILE`) is
 * written as a flag: systemd does not pass the shell's environment on.
 *
 * A system unit (`--system`) runs the daemon as a dynamic user
 * (`DynamicUser=yes`: a uid allocated at start, owning nothing else on the
 * host) with its state in `/var/lib/lanchat` (`StateDirectory=`): the node
 * key, the database (history, pinned peer keys, groups) and, by default,
 * received files (`/var/lib/lanchat/downloads`), kept across restarts and
 * reboots. The network key file is handed over by systemd as a credential
 * (`LoadCredential=`), so it may stay readable by root only. A dynamic user
 * can write nowhere else: flags that name another folder for the daemon to
 * write need `--user-name NAME`, a fixed user, whose folders are then made
 * writable (`ReadWritePaths=`). The sandbox is what `systemd-analyze
 * security` rewards and the daemon tolerates: it needs IPv4/IPv6 sockets
 * (UDP broadcast, TCP listen), netlink (interfaces) and Unix sockets; it
 * cannot have `MemoryDenyWriteExecute=` (V8 compiles code at run time).
 *
 * @module
 */
import type { Option } from "commander";
import { parseDaemonArgs } from "./daemon.ts";
import { UsageError } from "./options.ts";

export const UNIT_NAME = "lanchat.service";
/** Where a system unit keeps the daemon's state (systemd's StateDirectory=lanchat). */
export const SYSTEM_STATE = "/var/lib/lanchat";
/** The name of the network key credential (`%d/network-key` in ExecStart). */
const KEY_CREDENTIAL = "network-key";

/** A word of ExecStart: user text (quoted and escaped) or our own (may hold systemd specifiers such as %S). */
type Word = string | { raw: string };

export interface UnitOptions {
  /** The `lanchat` launcher to run. */
  launcher: string;
  /** `lanchat daemon` flags, checked (see {@link checkDaemonArgs}). */
  daemonArgs: Word[];
  system: boolean;
  /** For a system unit: a fixed user to run as instead of a dynamic one. */
  user?: string;
  /** For a system unit: the network key file, loaded as a credential. */
  keyFile?: string;
  /** For a system unit with a fixed user: folders the daemon writes outside its state directory. */
  writable?: string[];
}

/** Quotes a word for a systemd command line; `%` and `$` stay literal. */
export function unitQuote(w: Word): string {
  if (typeof w !== "string") return w.raw;
  const s = w.replaceAll("%", "%%").replaceAll("$", "$$$$");
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s)) return s;
  const escaped = s.replaceAll("\\", "\\\\").replaceAll('"', '\\"')
    .replace(/\p{Cc}/gu, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
  return `"${escaped}"`;
}

/**
 * A path for a unit setting that takes the rest of the line and expands
 * specifiers but not `$`, with no quoting or escapes (`LoadCredential=ID:PATH`):
 * `%` doubled, a control character written as `\\xNN` (which names no such
 * file: such a path is refused earlier, see {@link checkSettingPath}, and
 * can never end the line and start a directive).
 * @throws {UsageError} for a path that starts or ends with a space or ends
 * with `\\` (trimmed, or read as a line continuation).
 */
export function lineValue(path: string): string {
  if (/^\s|\s$|\\$/.test(path)) {
    throw new UsageError(`${JSON.stringify(path)}: a unit file cannot hold a path that starts or ends so`);
  }
  return hexControls(path.replaceAll("%", "%%"));
}

/** Control characters as `\\xNN`. */
function hexControls(s: string): string {
  return s.replace(/\p{Cc}/gu, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
}

/**
 * A path as a word of a space-separated list setting that unquotes and
 * expands specifiers but not `$` (`ReadWritePaths=`): `%` doubled, quoted
 * with `\\` and `"` escaped when it is not plain.
 */
export function listWord(path: string): string {
  const s = hexControls(path.replaceAll("%", "%%"));
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `"${s.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
}

/**
 * Refuses a path a unit setting other than ExecStart= cannot hold: those
 * have no escape for a control character.
 * @throws {UsageError}
 */
export function checkSettingPath(flag: string, path: string): void {
  if (/\p{Cc}/u.test(path)) {
    throw new UsageError(`${flag} ${JSON.stringify(path)}: a path with a control character cannot go into a unit file`);
  }
  lineValue(path);
}

/** A user name as systemd and useradd take it: letters, digits, `_`, `-`, not first a digit or `-`; or a uid. */
const USER_NAME = /^(?:[A-Za-z_][A-Za-z0-9_-]{0,30}\$?|\d{1,10})$/;

/**
 * Checks a `--user-name`.
 * @throws {UsageError} when it is not a user name.
 */
export function checkUserName(name: string): string {
  if (!USER_NAME.test(name)) {
    throw new UsageError(
      `--user-name ${JSON.stringify(name)}: not a user name (letters, digits, _ and -, not starting with a digit ` +
        `or -, at most 31; or a uid)`,
    );
  }
  return name;
}

/** Whether an option's value is a path: its placeholder in the parser says so. */
export function isPathOption(o: Option): boolean {
  return /<(dir|path|file)>/.test(o.flags);
}

/** `path` resolved against `cwd` and normalised (no `.`, `..` or doubled `/`). */
export function absolutePath(path: string, cwd: string): string {
  const parts: string[] = [];
  for (const p of (path.startsWith("/") ? path : `${cwd}/${path}`).split("/")) {
    if (p === "" || p === ".") continue;
    if (p === "..") parts.pop();
    else parts.push(p);
  }
  return `/${parts.join("/")}`;
}

/** Daemon flags checked by the daemon's parser: `--flag value` each, paths absolute. */
export interface CheckedArgs {
  args: string[];
  /** The indexes in `args` of path values. */
  pathAt: Set<number>;
}

/**
 * Checks `args` with the daemon's own parser and makes every path absolute
 * against `cwd`.
 * @throws {UsageError} with the parser's message.
 */
export function checkDaemonArgs(args: string[], cwd: string): CheckedArgs {
  const cmd = parseDaemonArgs(args);
  const out: string[] = [];
  const pathAt = new Set<number>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const eq = a.startsWith("--") ? a.indexOf("=") : -1;
    const name = eq > 0 ? a.slice(0, eq) : a;
    const option = cmd.options.find((o) => o.long === name || o.short === name);
    // The parser accepted these args: a flag with a required value has it inline or next.
    if (!option?.required) {
      out.push(a);
      continue;
    }
    let value = eq > 0 ? a.slice(eq + 1) : args[++i]!;
    // The daemon refuses an empty path at start; "" made absolute would be the current folder.
    if (isPathOption(option) && value === "") throw new UsageError(`${option.long} needs a path, not an empty one`);
    if (isPathOption(option)) {
      value = absolutePath(value, cwd);
      pathAt.add(out.length + 1);
    }
    out.push(option.long!, value);
  }
  // A value the parser took from the environment (LANCHAT_KEY_FILE): systemd will not pass it on, so the unit says it.
  for (const option of cmd.options) {
    const value = option.envVar ? Deno.env.get(option.envVar) : undefined;
    if (value === undefined || cmd.getOptionValueSource(option.attributeName()) !== "env") continue;
    if (isPathOption(option)) pathAt.add(out.length + 1);
    out.push(option.long!, isPathOption(option) ? absolutePath(value, cwd) : value);
  }
  return { args: out, pathAt };
}

/** Whether `path` is `dir` or inside it. */
function within(path: string, dir: string): boolean {
  return path === dir || path.startsWith(`${dir}/`);
}

/** Folders systemd's ProtectHome= hides. */
const HOMES = ["/home", "/root", "/run/user"];

/** Whether `path` is in a folder systemd's ProtectHome= hides. */
export function inHome(path: string): boolean {
  return HOMES.some((h) => within(path, h));
}

/**
 * The unit options of a system unit for checked flags: the state directory
 * as data and downloads folders unless flags say otherwise, the key file as a
 * credential, other written paths allowed (a fixed user) or refused (a
 * dynamic one).
 * @throws {UsageError} when the unit could not work.
 */
export function systemUnitOptions(launcher: string, checked: CheckedArgs, user?: string): UnitOptions {
  if (user !== undefined) checkUserName(user);
  if (inHome(launcher)) {
    throw new UsageError(
      `The system service cannot run ${launcher}: home folders are hidden from it (ProtectHome). Install lanchat ` +
        `system-wide first ("sudo lanchat install --prefix /usr/local"), then run this again`,
    );
  }
  const words: Word[] = [];
  const writable: string[] = [];
  let keyFile: string | undefined;
  const { args, pathAt } = checked;
  const given = new Set<string>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!pathAt.has(i + 1)) {
      words.push(a);
      continue;
    }
    const path = args[++i]!;
    given.add(a);
    if (a === "--key-file") {
      // Read once at start, as root would: a credential, so the key file may stay 0600 root.
      keyFile = path;
      checkSettingPath(a, path);
      words.push(a, { raw: `%d/${KEY_CREDENTIAL}` });
      continue;
    }
    words.push(a, path);
    // Every other path flag names something the daemon writes (a folder, or a file it creates).
    if (within(path, SYSTEM_STATE)) continue;
    if (!user) {
      throw new UsageError(
        `${a} ${path}: the system service runs as a dynamic user who can write only in ${SYSTEM_STATE}; ` +
          `choose a path there, or run it as a user of yours: --user-name NAME`,
      );
    }
    const folder = a === "--data-dir" || a === "--downloads" ? path : path.slice(0, path.lastIndexOf("/")) || "/";
    checkSettingPath(a, folder);
    writable.push(folder);
  }
  const defaults: Word[] = [];
  if (!given.has("--data-dir")) defaults.push("--data-dir", { raw: "%S/lanchat" });
  if (!given.has("--downloads")) defaults.push("--downloads", { raw: "%S/lanchat/downloads" });
  return { launcher, daemonArgs: [...defaults, ...words], system: true, user, keyFile, writable };
}

/** The sandbox of a system unit (see the module's note). */
function sandbox(o: UnitOptions): string {
  const home = o.writable?.some((p) => HOMES.some((h) => within(p, h))) ? "read-only" : "yes";
  return `# The sandbox: lanchat needs IPv4/IPv6 sockets (UDP broadcast, TCP listen) to any LAN address,
# netlink to list interfaces, Unix sockets; V8 compiles at run time, so no MemoryDenyWriteExecute;
# Deno raises its open-file limit at start, so @resources stays allowed.
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=${home}
PrivateTmp=yes
PrivateDevices=yes
PrivateIPC=yes
PrivateMounts=yes
PrivateUsers=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
ProcSubset=pid
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
RemoveIPC=yes
CapabilityBoundingSet=
AmbientCapabilities=
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallFilter=~@privileged
SystemCallErrorNumber=EPERM
UMask=0077
`;
}

/** The unit file's text. */
export function unitText(o: UnitOptions): string {
  const exec = [o.launcher, "daemon", ...o.daemonArgs].map(unitQuote).join(" ");
  const who = !o.system ? "" : o.user ? `User=${checkUserName(o.user)}\n` : "DynamicUser=yes\n";
  const state = o.system ? `StateDirectory=lanchat\nStateDirectoryMode=0700\n` : "";
  const key = o.keyFile ? `LoadCredential=${KEY_CREDENTIAL}:${lineValue(o.keyFile)}\n` : "";
  const rw = o.writable?.length ? `ReadWritePaths=${o.writable.map(listWord).join(" ")}\n` : "";
  return `[Unit]
Description=lanchat: LAN discovery and messaging daemon
After=network-online.target
Wants=network-online.target

[Service]
Type=exec
ExecStart=${exec}
${who}${state}${key}${rw}# SIGTERM makes the daemon say goodbye to every peer and exit 0.
KillSignal=SIGTERM
TimeoutStopSec=10
Restart=on-failure
RestartSec=2
# Room for the HTTP connection cap (--http-max-connections, 256) and more.
LimitNOFILE=4096
${o.system ? sandbox(o) : ""}
[Install]
WantedBy=${o.system ? "multi-user.target" : "default.target"}
`;
}
