/** `lanchat daemon`: runs the discovery daemon until SIGINT or SIGTERM. */
import { resolve } from "node:path";
import { Command, CommanderError, Option } from "commander";
import { Daemon } from "../node/daemon.ts";
import { installLastResort } from "../node/last_resort.ts";
import { DEFAULT_DISCOVERY_PORT, DEFAULT_HTTP, DEFAULT_UNICAST_PORT } from "../node/options.ts";
import { DEFAULT_PROBE_TIMEOUT_MS } from "../protocol/roster.ts";
import { DEFAULT_INTERVAL_MS } from "../protocol/discovery.ts";
import { DEFAULT_HTTP_LIMITS } from "../node/http_server.ts";
import { parseNetworkKey } from "../security/seal.ts";
import { LOG_FORMATS, type LogFormat, logger, parseLevel, setupLogging } from "../common/log.ts";
import type { LogLevel } from "@logtape/logtape";
import { parseSize } from "./options.ts";
import { AUTO_ACCEPT_IMAGES_DEFAULT, AUTO_ACCEPT_IMAGES_MAX } from "../protocol/media_type.ts";
import { InvalidArgumentError } from "commander";
import {
  collect,
  formatDuration,
  parseBudget,
  parseDiscoveryPort,
  parseDurationIn,
  parseHttp,
  parseIPv4Arg,
  parseMaxConnections,
  parseMaxPeers,
  parseName,
  parsePeer,
  parsePort,
  usage,
  UsageError,
} from "./options.ts";

interface DaemonFlags {
  name?: string;
  dataDir?: string;
  port: number;
  unicastPort: number;
  http: { hostname: string; port: number };
  interval: number;
  probeTimeout: number;
  interface?: string[];
  excludeInterface?: string[];
  broadcast?: string[];
  peer?: string[];
  logLevel: LogLevel;
  logFormat: LogFormat;
  maxPeers: number;
  httpMaxConnections: number;
  announceBudget: number;
  keyFile?: KeyFile;
  httpTokenFile?: string;
  ipmsg?: boolean;
  ipmsgPort: number;
  ipmsgGroup: string;
  downloads?: string;
  acceptFiles: "ask" | "trusted" | "always";
  autoAcceptMax: number;
  autoAcceptImages?: { enabled: boolean; maxBytes: number };
  keepFree: number;
  fileRetry?: number;
  awayReply?: string;
  readReceipts: boolean;
  requireEncryption?: boolean;
  notify: boolean;
  mdns: boolean;
  ipv6: boolean;
}

export function registerDaemon(program: Command): void {
  program.command("daemon")
    .description("Run the lanchat daemon: announce this host, keep the roster, serve the status endpoint")
    .option("--name <name>", "display name, 1 to 64 UTF-8 bytes (default: $USER@hostname)", parseName)
    .option(
      "--data-dir <dir>",
      "where the node key and database live (default: $XDG_DATA_HOME/lanchat or ~/.local/share/lanchat)",
    )
    .option(
      "--port <port>",
      "discovery UDP port, the same on every host of a LAN",
      parseDiscoveryPort,
      DEFAULT_DISCOVERY_PORT,
    )
    .option(
      "--unicast-port <port>",
      "this daemon's unicast UDP port; falls back to a free one if taken",
      parsePort,
      DEFAULT_UNICAST_PORT,
    )
    .addOption(
      new Option("--http <host:port>", "status endpoint address (port 0 picks a free one)")
        .argParser(parseHttp)
        .default({ ...DEFAULT_HTTP }, `${DEFAULT_HTTP.hostname}:${DEFAULT_HTTP.port}`),
    )
    .addOption(
      new Option("--interval <duration>", "announce interval, 50ms to 1h (e.g. 500ms, 2s, 1m30s)")
        .argParser(parseDurationIn(50, 3_600_000))
        .default(DEFAULT_INTERVAL_MS, formatDuration(DEFAULT_INTERVAL_MS)),
    )
    .addOption(
      new Option("--probe-timeout <duration>", "how long a silent peer has to answer a probe, 10ms to 1m")
        .argParser(parseDurationIn(10, 60_000))
        .default(DEFAULT_PROBE_TIMEOUT_MS, formatDuration(DEFAULT_PROBE_TIMEOUT_MS)),
    )
    .option("--interface <name>", "announce only on this interface (repeatable)", collect(String))
    .option(
      "--exclude-interface <name>",
      "never announce on this interface, e.g. docker0 (repeatable)",
      collect(String),
    )
    .option("--broadcast <addr>", "also announce to this broadcast address (repeatable)", collect(parseIPv4Arg))
    .option(
      "--peer <host[:port]>",
      "also announce by unicast to this host, e.g. across subnets: 198.18.0.12, host2:47475, [fd00::2]:47475, fd00::2 (repeatable)",
      collect(parsePeer),
    )
    .option("--no-ipv6", "IPv4 only: no IPv6 multicast announces, unicast and file sockets on 0.0.0.0")
    .addOption(
      new Option("--key-file <path>", "network key shared by the group (lanchat keygen); $LANCHAT_KEY_FILE")
        .env("LANCHAT_KEY_FILE")
        .argParser(usage(readKeyFile)),
    )
    .option(
      "--http-token-file <path>",
      "bearer token the HTTP API requires, on loopback too (created 0600 if absent; refused if others may read it), " +
        "default <data-dir>/http_token",
    )
    .option(
      "--announce-budget <n>",
      "hellos a second each host may receive from all others: past it the interval grows with the roster (1 to 10000)",
      usage(parseBudget),
      50,
    )
    .option("--max-peers <n>", "bound on the roster (1 to 100000)", usage(parseMaxPeers), 1024)
    .option(
      "--http-max-connections <n>",
      "most HTTP connections open at once (1 to 100000); past it the longest-idle one is closed",
      usage(parseMaxConnections),
      DEFAULT_HTTP_LIMITS.maxConnections,
    )
    .option("--ipmsg", "also speak IP Messenger (IP Messenger, FeiQ, iptux users appear as peers)")
    .option("--ipmsg-port <port>", "IP Messenger UDP port", parsePort, 2425)
    .option("--ipmsg-group <name>", "group shown to IP Messenger users", "lanchat")
    .option("--no-read-receipts", "never tell a peer that its messages were read")
    .option(
      "--no-mdns",
      "neither advertise _lanchat._udp.local by mDNS/DNS-SD nor browse for it (by default both, on the interfaces announced on)",
    )
    .option(
      "--no-notify",
      "no desktop notifications (by default a message that comes while no web page is open pops up on the session bus, unless busy)",
    )
    .option(
      "--require-encryption",
      "refuse peers of a lanchat version without end-to-end encryption (by default they are spoken to in the clear, marked unencrypted)",
    )
    .option("--away-reply <text>", "while away, each peer that writes gets this once (an automatic reply)")
    .option("--downloads <dir>", "where received files go (default: $XDG_DOWNLOAD_DIR/lanchat or ~/Downloads/lanchat)")
    .addOption(
      new Option(
        "--accept-files <policy>",
        "file offers: ask (wait for lanchat accept), trusted (accept from trusted keys), always",
      )
        .choices(["ask", "trusted", "always"]).default("ask"),
    )
    .option(
      "--auto-accept-max <size>",
      "larger offers always wait to be accepted (e.g. 500M, 2G)",
      parseSize,
      1024 ** 3,
    )
    .option(
      "--auto-accept-images <size|off>",
      "offers of pictures only (PNG, JPEG, GIF, WebP), up to this size in all, from peers whose key you verified: " +
        "accepted without asking (e.g. 10M; at most 64M); replaces the page's setting at start",
      parseAutoAcceptImages,
    )
    .option(
      "--keep-free <size>",
      "disk space always left free in --downloads: offers that would not leave it are refused",
      parseSize,
      1024 ** 3,
    )
    .addOption(
      // For tests: a back-off short enough to see a sender given up on without waiting minutes.
      new Option("--file-retry <duration>", "first wait before a stalled download is tried again, 10ms to 1m")
        .argParser(parseDurationIn(10, 60_000))
        .hideHelp(),
    )
    .addOption(
      new Option("--log-level <level>", "trace, debug, info, warning, error").default("info").argParser(
        usage(parseLevel),
      ),
    )
    .addOption(new Option("--log-format <format>", "log line format").choices(LOG_FORMATS).default("text"))
    .action(async (flags: DaemonFlags) => {
      setupLogging({ level: flags.logLevel, format: flags.logFormat });
      installLastResort();
      if (flags.keyFile?.looseMode !== undefined) {
        logger("daemon").warn(
          "Key file {path} can be read by other users of this host (mode {mode}): whoever reads it can join the group; run chmod 600 {path}",
          { path: flags.keyFile.path, mode: flags.keyFile.looseMode.toString(8).padStart(4, "0") },
        );
      }
      const daemon = await Daemon.start({
        name: flags.name,
        dataDir: flags.dataDir,
        discoveryPort: flags.port,
        unicastPort: flags.unicastPort,
        http: flags.http,
        httpTokenFile: flags.httpTokenFile,
        intervalMs: flags.interval,
        probeTimeoutMs: flags.probeTimeout,
        interfaces: flags.interface,
        excludeInterfaces: flags.excludeInterface,
        broadcasts: flags.broadcast,
        peers: flags.peer,
        maxPeers: flags.maxPeers,
        announceBudget: flags.announceBudget,
        networkKey: flags.keyFile?.key,
        keyFilePath: flags.keyFile?.path,
        ipmsg: flags.ipmsg ? { port: flags.ipmsgPort, group: flags.ipmsgGroup } : undefined,
        httpMaxConnections: flags.httpMaxConnections,
        awayReply: flags.awayReply,
        readReceipts: flags.readReceipts,
        requireEncryption: flags.requireEncryption ?? false,
        notify: flags.notify,
        mdns: flags.mdns,
        ipv6: flags.ipv6,
        files: {
          // Absolute, so that `lanchat accept` can say where files go wherever it runs.
          downloads: flags.downloads === undefined ? undefined : resolve(flags.downloads),
          accept: flags.acceptFiles,
          autoAcceptMaxBytes: flags.autoAcceptMax,
          autoAcceptImages: flags.autoAcceptImages,
          keepFreeBytes: flags.keepFree,
          retryFirstMs: flags.fileRetry,
        },
      });
      await new Promise<void>((resolve) => {
        let stopping = false;
        const onSignal = (signal: Deno.Signal) => {
          if (stopping) return;
          stopping = true;
          logger("daemon").info("Received {signal}, saying goodbye", { signal });
          daemon.stop().catch((e) => {
            logger("daemon").error("Stopping failed: {error}", { error: (e as Error).message });
          }).finally(resolve);
        };
        for (const s of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(s, () => onSignal(s));
      });
    });
}

/**
 * Parses `args` as `lanchat daemon` would, without running anything (a key
 * file named is read and checked, as the daemon would at start); returns the
 * command, whose `options` say which flags take a value and what kind.
 * `lanchat service` checks a unit's flags with it before writing the unit.
 * @throws {UsageError} with the parser's message.
 */
export function parseDaemonArgs(args: string[]): Command {
  const program = new Command("lanchat");
  registerDaemon(program);
  const cmd = program.commands[0]!
    .exitOverride()
    .configureOutput({ writeOut: () => {}, writeErr: () => {} })
    .action(() => {}); // parse only: the daemon's action is replaced
  try {
    cmd.parse(args, { from: "user" });
  } catch (e) {
    if (!(e instanceof CommanderError)) throw e;
    if (e.exitCode === 0) throw new UsageError(`${args.join(" ")}: help or version is no daemon flag`);
    throw new UsageError(`Daemon flag refused: ${e.message.replace(/^error: /, "").replace(/\.$/, "")}`);
  }
  return cmd;
}

/** A network key read from its file, with whether others than its owner may read that file. */
interface KeyFile {
  key: Uint8Array;
  path: string;
  /** The file's permission bits when group or others may read it (a warning), else undefined. */
  looseMode?: number;
}

/** Reads and checks a network key file (an unreadable or malformed one is a usage error: exit 2). */
function readKeyFile(path: string): KeyFile {
  let text: string;
  let mode: number | null;
  try {
    text = Deno.readTextFileSync(path);
    mode = Deno.statSync(path).mode;
  } catch (e) {
    throw new Error(`Cannot read key file ${path}: ${(e as Error).message}`);
  }
  const perms = (mode ?? 0) & 0o777;
  return { key: parseNetworkKey(text, path), path, looseMode: perms & 0o077 ? perms : undefined };
}

/** `--auto-accept-images`: `off`, or a size from 1 byte to 64 MiB. */
function parseAutoAcceptImages(s: string): { enabled: boolean; maxBytes: number } {
  if (s.trim().toLowerCase() === "off") return { ...AUTO_ACCEPT_IMAGES_DEFAULT, enabled: false };
  const maxBytes = parseSize(s);
  if (maxBytes < 1 || maxBytes > AUTO_ACCEPT_IMAGES_MAX) {
    throw new InvalidArgumentError(`"${s}" is not a size from 1 byte to 64M (or off).`);
  }
  return { enabled: true, maxBytes };
}
