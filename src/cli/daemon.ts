/** `lanchat daemon`: runs the discovery daemon until SIGINT or SIGTERM. */
import type { Command } from "commander";
import { Option } from "commander";
import { Daemon, DEFAULT_DISCOVERY_PORT, DEFAULT_UNICAST_PORT } from "../daemon.ts";
import { DEFAULT_INTERVAL_MS } from "../discovery.ts";
import { DEFAULT_HTTP_LIMITS } from "../http_server.ts";
import { parseNetworkKey } from "../seal.ts";
import { LOG_FORMATS, type LogFormat, logger, parseLevel, setupLogging } from "../log.ts";
import type { LogLevel } from "@logtape/logtape";
import {
  collect,
  parseBudget,
  parseDurationIn,
  parseHttp,
  parseIPv4Arg,
  parseMaxConnections,
  parseMaxPeers,
  parsePeer,
  parsePort,
  usage,
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
  keyFile?: Uint8Array;
  httpTokenFile?: string;
  ipmsg?: boolean;
  ipmsgPort: number;
  ipmsgGroup: string;
}

export function registerDaemon(program: Command): void {
  program.command("daemon")
    .description("Run the lanchat daemon: announce this host, keep the roster, serve the status endpoint")
    .option("--name <name>", "display name (default: $USER@hostname)")
    .option(
      "--data-dir <dir>",
      "where the node key and database live (default: $XDG_DATA_HOME/lanchat or ~/.local/share/lanchat)",
    )
    .option("--port <port>", "discovery UDP port, shared by all daemons of a LAN", parsePort, DEFAULT_DISCOVERY_PORT)
    .option(
      "--unicast-port <port>",
      "this daemon's unicast UDP port; falls back to a free one if taken",
      parsePort,
      DEFAULT_UNICAST_PORT,
    )
    .option("--http <host:port>", "status endpoint address", parseHttp, { hostname: "127.0.0.1", port: 47476 })
    .option(
      "--interval <duration>",
      "announce interval, 50ms to 1h (e.g. 2s, 500ms)",
      parseDurationIn(50, 3_600_000),
      DEFAULT_INTERVAL_MS,
    )
    .option(
      "--probe-timeout <duration>",
      "how long a silent peer has to answer a probe",
      parseDurationIn(10, 60_000),
      500,
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
      "also announce by unicast to this host, e.g. across subnets (repeatable)",
      collect(parsePeer),
    )
    .addOption(
      new Option("--key-file <path>", "network key shared by the group (lanchat keygen); $LANCHAT_KEY_FILE")
        .env("LANCHAT_KEY_FILE")
        .argParser(usage(readKeyFile)),
    )
    .option(
      "--http-token-file <path>",
      "bearer token the HTTP API requires (created if absent); required beyond loopback, " +
        "default <data-dir>/http_token then",
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
    .addOption(
      new Option("--log-level <level>", "trace, debug, info, warning, error").default("info").argParser(
        usage(parseLevel),
      ),
    )
    .addOption(new Option("--log-format <format>", "log line format").choices(LOG_FORMATS).default("text"))
    .action(async (flags: DaemonFlags) => {
      setupLogging({ level: flags.logLevel, format: flags.logFormat });
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
        networkKey: flags.keyFile,
        ipmsg: flags.ipmsg ? { port: flags.ipmsgPort, group: flags.ipmsgGroup } : undefined,
        httpMaxConnections: flags.httpMaxConnections,
      });
      await new Promise<void>((resolve) => {
        let stopping = false;
        const onSignal = (signal: Deno.Signal) => {
          if (stopping) return;
          stopping = true;
          logger("daemon").info("Received {signal}, saying goodbye", { signal });
          daemon.stop().finally(resolve);
        };
        for (const s of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(s, () => onSignal(s));
      });
    });
}

/** Reads and checks a network key file (an unreadable or malformed one is a usage error: exit 2). */
function readKeyFile(path: string): Uint8Array {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    throw new Error(`Cannot read key file ${path}: ${(e as Error).message}`);
  }
  return parseNetworkKey(text, path);
}
