/**
 * `lanchat doctor`: why this host sees nobody, or why someone cannot reach
 * it, each finding with its fix in words. It asks the daemon what it knows
 * (`GET /diagnostics`: peers heard, one-way links, clocks, the interfaces it
 * announces on) and reads the host itself (interfaces, who holds the ports,
 * the firewall, key-file modes, free space), so it works, with less to say,
 * when no daemon runs. Exit 0 when all is well, 1 with the list otherwise;
 * `--json` prints `{ ok, daemon, interfaces, ports, findings: [{ id, severity, message, fix }] }`
 * with what came from elsewhere exact; the text output shows its control
 * characters (printable.ts).
 *
 * @module
 */
import type { Command } from "commander";
import type { DiagnosticsJson } from "../api/diagnostics_json.ts";
import { defaultDataDir, defaultDownloads, HTTP_TOKEN_FILE, KEY_FILE } from "../common/data_dir.ts";
import { printableLine } from "../common/printable.ts";
import { VERSION } from "../common/version.ts";
import { DEFAULT_DISCOVERY_PORT, DEFAULT_UNICAST_PORT } from "../node/options.ts";
import { ApiError, daemonUrl, getJson, NoDaemonError, NotOwnDaemonError } from "./client.ts";
import type { OurPort } from "./doctor_firewall.ts";
import {
  allWell,
  type DoctorFacts,
  type Finding,
  findings,
  type HostInterface,
  httpStrangers,
  inSubnet,
} from "./doctor_findings.ts";
import { humanDuration } from "./status.ts";
import { fileModes, firewall, freeSpace, hostInterfaces, listeners } from "./doctor_system.ts";
import { EXIT, httpOption, outcome, parseDiscoveryPort, parsePort } from "./options.ts";

interface DoctorFlags {
  json?: boolean;
  http?: string;
  port: number;
  unicastPort: number;
  dataDir?: string;
  keyFile?: string;
  downloads?: string;
}

export function registerDoctor(program: Command): void {
  program.command("doctor")
    .description(
      "Say why you see nobody, or why someone cannot reach you: interfaces, ports, firewall, one-way links, clocks, key files, disk space",
    )
    .option("--json", "print { ok, daemon, interfaces, ports, findings: [{ id, severity, message, fix }] } for scripts")
    .addOption(httpOption())
    .option(
      "--port <port>",
      "discovery UDP port to check when no daemon answers",
      parseDiscoveryPort,
      DEFAULT_DISCOVERY_PORT,
    )
    .option("--unicast-port <port>", "unicast port to check when no daemon answers", parsePort, DEFAULT_UNICAST_PORT)
    .option("--data-dir <dir>", "data directory to check when no daemon answers (default: the daemon's default)")
    .option("--key-file <path>", "network key file to check when no daemon answers; $LANCHAT_KEY_FILE")
    .option("--downloads <dir>", "downloads folder to check when no daemon answers")
    .addHelpText(
      "after",
      "\nExit codes: 0 all is well, 1 something to fix (listed), 2 bad usage. Firewall rules are read as a best effort (nft, else iptables-save), not simulated.",
    )
    .action(async (opts: DoctorFlags) => {
      const facts = await gather(opts);
      const list = findings(facts, opts.json ? (s) => s : printableLine);
      outcome.code = allWell(list) ? EXIT.ok : EXIT.error;
      if (opts.json) {
        console.log(JSON.stringify(
          {
            ok: allWell(list),
            daemon: facts.daemon ? { url: facts.daemonUrl, version: facts.daemon.version } : null,
            interfaces: interfaceRows(facts),
            ports: facts.ports,
            findings: list,
          },
          null,
          2,
        ));
        return;
      }
      console.log(describeDoctor(facts, list).join("\n"));
    });
}

/** Everything the findings need: the daemon's diagnostics if one answers, then the host. */
async function gather(opts: DoctorFlags): Promise<DoctorFacts> {
  const url = daemonUrl(opts.http);
  let daemon: DiagnosticsJson | undefined;
  let daemonError: string | undefined;
  let daemonStatus: number | undefined;
  try {
    daemon = await getJson<DiagnosticsJson>(url, "/diagnostics");
  } catch (e) {
    if (e instanceof ApiError) {
      daemonError = `${e.status}: ${e.message}`;
      daemonStatus = e.status;
    } else if (e instanceof NotOwnDaemonError) {
      // Another user listens there: the token was kept back; ask without it what answers.
      const answer = await askWithoutToken(url);
      daemonStatus = answer?.status;
      daemonError = answer ? `${answer.status}: ${answer.error}` : e.message;
    } else if (!(e instanceof NoDaemonError)) daemonError = (e as Error).message;
  }
  const env = (n: string) => Deno.env.get(n);
  const dataDir = daemon?.dataDir ?? opts.dataDir ?? tryOr(() => defaultDataDir(env));
  const keyFile = daemon ? daemon.keyFile : opts.keyFile ?? env("LANCHAT_KEY_FILE");
  const downloads = daemon ? daemon.downloads : opts.downloads ?? tryOr(() => defaultDownloads(env));
  const p = daemon?.ports ?? { discovery: opts.port, unicast: opts.unicastPort, http: 0, file: opts.unicastPort };
  const httpPort = Number(/:(\d+)$/.exec(url)?.[1] ?? 0);
  const ports: OurPort[] = [
    { proto: "udp", port: p.discovery, role: "discovery" },
    { proto: "udp", port: p.unicast, role: "unicast" },
    ...(p.file ? [{ proto: "tcp" as const, port: p.file, role: "file" }] : []),
    ...(httpPort ? [{ proto: "tcp" as const, port: httpPort, role: "http" }] : []),
  ];
  const files = [
    ...(keyFile ? [{ what: "network key file", path: keyFile }] : []),
    ...(dataDir
      ? [
        { what: "node key file", path: `${dataDir}/${KEY_FILE}` },
        { what: "HTTP token file", path: `${dataDir}/${HTTP_TOKEN_FILE}` },
        { what: "data directory", path: dataDir },
      ]
      : []),
  ];
  return {
    daemon,
    daemonUrl: url.replace(/^https?:\/\//, ""),
    daemonError,
    daemonStatus,
    interfaces: hostInterfaces(),
    ports,
    listeners: listeners(ports),
    firewall: firewall(ports.filter((x) => x.role !== "http")),
    files: fileModes(files),
    disks: freeSpace([
      ...(dataDir ? [{ what: "data directory", path: dataDir }] : []),
      ...(downloads ? [{ what: "downloads folder", path: downloads }] : []),
    ]),
    version: daemon?.version ?? VERSION,
    uid: tryOr(() => Deno.uid()) ?? undefined,
  };
}

/**
 * What answers `GET /diagnostics` at `url` when asked with no token (what
 * another user's daemon says: 401), or undefined when nothing answers HTTP.
 */
async function askWithoutToken(url: string): Promise<{ status: number; error: string } | undefined> {
  try {
    const res = await fetch(`${url}/diagnostics`, { signal: AbortSignal.timeout(5000) });
    const text = await res.text();
    let error = text.trim().slice(0, 500) || `status ${res.status}`;
    try {
      const body = JSON.parse(text);
      if (typeof body?.error === "string") error = body.error;
    } catch { /* not JSON: the text as it came */ }
    return { status: res.status, error };
  } catch {
    return undefined;
  }
}

function tryOr<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch {
    return undefined;
  }
}

/**
 * This host's interfaces with what the daemon says of them: announced on or
 * not, and the last hello heard from an address in the subnet (null: none;
 * both absent without a daemon).
 */
export function interfaceRows(
  f: DoctorFacts,
): (HostInterface & { announced?: boolean; lastHelloAgoMs?: number | null })[] {
  const d = f.daemon;
  if (!d) return f.interfaces;
  return f.interfaces.map((i) => {
    const ago = d.helloSources.filter((s) => inSubnet(s.address, i.cidr)).map((s) => s.agoMs);
    return {
      ...i,
      announced: d.interfaces.some((a) => a.interface === i.name && a.address === i.address),
      lastHelloAgoMs: ago.length ? Math.min(...ago) : null,
    };
  });
}

/** The lines `lanchat doctor` prints. */
export function describeDoctor(f: DoctorFacts, list: readonly Finding[]): string[] {
  const d = f.daemon;
  const lines: string[] = [];
  const url = printableLine(f.daemonUrl);
  const stranger = httpStrangers(f)[0];
  lines.push(
    d
      ? `daemon: lanchat ${
        printableLine(d.version)
      } at ${url}, pid ${d.pid}, ${d.group} group, ${d.peers.length} peer(s)`
      : f.daemonStatus !== undefined
      ? `daemon: ${stranger ? "another user's daemon" : "a daemon"} answers at ${url} but not this command ` +
        `(status ${f.daemonStatus}); checking the host only`
      : `daemon: no lanchat daemon answers at ${url}${
        f.daemonError ? ` (${printableLine(f.daemonError)})` : ""
      }; checking the host only`,
  );
  for (const i of interfaceRows(f)) {
    const heard = i.lastHelloAgoMs === undefined
      ? ""
      : i.lastHelloAgoMs === null
      ? ", no hello heard"
      : `, last hello ${humanDuration(i.lastHelloAgoMs)} ago`;
    lines.push(
      `interface ${printableLine(i.name)}: ${i.cidr}, broadcast ${i.broadcast}${i.up ? "" : ", down"}${
        i.announced === undefined ? "" : i.announced ? ", announced on" : ", not announced on"
      }${heard}`,
    );
  }
  if (f.interfaces.length === 0) lines.push("interfaces: none but loopback");
  lines.push(`ports: ${f.ports.map((p) => `${p.role} ${p.port}/${p.proto}`).join(", ")}`);
  if (f.firewall.read) {
    lines.push(
      `firewall: ${f.firewall.read} rules read (a best effort: rules that could match these ports, not a simulation)`,
    );
  }
  lines.push("");
  if (allWell(list)) lines.push("All is well.");
  for (const x of list) {
    lines.push(`${x.severity.toUpperCase()} [${x.id}] ${x.message}`);
    lines.push(`  fix: ${x.fix}`);
  }
  return lines;
}
