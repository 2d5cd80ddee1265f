/**
 * `lanchat doctor`'s findings, each with its fix in words, from facts
 * gathered elsewhere (cli/doctor_system.ts reads the host, the daemon's
 * `GET /diagnostics` what it knows): pure, so each finding is tested from
 * canned inputs.
 *
 * @module
 */
import type { DiagnosticsJson } from "../api/diagnostics_json.ts";
import { printableLine } from "../common/printable.ts";
import { formatBytes } from "../protocol/files.ts";
import { isOneWay } from "../protocol/reachability.ts";
import type { FirewallHit, OurPort } from "./doctor_firewall.ts";

/** One thing found, with what to do about it. `id` is stable for scripts. */
export interface Finding {
  id: string;
  /** error: lanchat cannot work so; warning: it may not, or not for everyone; info: said, not wrong. */
  severity: "error" | "warning" | "info";
  message: string;
  fix: string;
}

/** An IPv4 interface of this host. */
export interface HostInterface {
  name: string;
  address: string;
  /** `198.18.0.12/24`. */
  cidr: string;
  broadcast: string;
  up: boolean;
}

/** A socket listening on one of our ports (from `ss`). */
export interface Listener {
  proto: "udp" | "tcp";
  port: number;
  process?: string;
  pid?: number;
}

/** A file whose mode matters. */
export interface FileFact {
  what: string;
  path: string;
  /** Permission bits; undefined when the file is not there. */
  mode?: number;
}

/** Free space where lanchat writes. */
export interface DiskFact {
  what: string;
  path: string;
  freeBytes?: number;
  error?: string;
}

/** Everything the findings are made from. */
export interface DoctorFacts {
  /** What the daemon says; undefined when none answers. */
  daemon?: DiagnosticsJson;
  daemonUrl: string;
  /** Why the daemon could not be asked, when it could not. */
  daemonError?: string;
  /** The HTTP status it answered `/diagnostics` with, when it answered with an error. */
  daemonStatus?: number;
  interfaces: HostInterface[];
  ports: OurPort[];
  /** undefined: `ss` could not be run. */
  listeners?: Listener[];
  /** `read`: what was read (`nftables`, `iptables`), when anything was. */
  firewall: { hits: FirewallHit[]; unread: string[]; read?: string };
  files: FileFact[];
  disks: DiskFact[];
  /** This CLI's version (the daemon's when it answers). */
  version: string;
}

/** Free space below which writing fails soon (the database, a download). */
export const DISK_LOW_BYTES = 64 * 1024 ** 2;
/** Below this, offers bigger than what is left are refused (the daemon keeps 1 GiB free by default). */
export const DISK_TIGHT_BYTES = 1024 ** 3;

/** Every finding, errors first. */
export function findings(f: DoctorFacts): Finding[] {
  const out = [
    ...daemonFindings(f),
    ...interfaceFindings(f),
    ...portFindings(f),
    ...firewallFindings(f),
    ...(f.daemon ? peerFindings(f.daemon, f.interfaces) : []),
    ...fileFindings(f.files),
    ...diskFindings(f.disks),
  ];
  const rank = { error: 0, warning: 1, info: 2 };
  return out.sort((a, b) => rank[a.severity] - rank[b.severity]);
}

/** Whether all is well: nothing but notes. */
export function allWell(list: readonly Finding[]): boolean {
  return list.every((x) => x.severity === "info");
}

function daemonFindings(f: DoctorFacts): Finding[] {
  if (f.daemon) return [];
  if (f.daemonStatus === 404 || f.daemonStatus === 501) {
    return [{
      id: "daemon-outdated",
      severity: "error",
      message: `The daemon at ${f.daemonUrl} keeps no diagnostics (it runs an older lanchat than this command's ${
        printableLine(f.version)
      }); only the host is checked`,
      fix:
        "Restart the daemon so that it runs this version (lanchat service restart, or stop it and run lanchat daemon)",
    }];
  }
  if (f.daemonStatus !== undefined) {
    return [{
      id: "daemon-refused",
      severity: "error",
      message: `The daemon at ${f.daemonUrl} refused this command (${f.daemonError}); only the host is checked`,
      fix: f.daemonStatus === 401
        ? "Run lanchat doctor as the user the daemon runs as, or set LANCHAT_HTTP_TOKEN to the token in its data directory"
        : "See the daemon's log",
    }];
  }
  return [{
    id: "daemon-not-running",
    severity: "error",
    message: `No lanchat daemon answers at ${f.daemonUrl}${f.daemonError ? ` (${f.daemonError})` : ""}; ` +
      "what only a running daemon knows (peers, one-way links, clocks) is not checked",
    fix: "Start it: lanchat daemon (or lanchat service install to have it start with the system)",
  }];
}

function interfaceFindings(f: DoctorFacts): Finding[] {
  const up = f.interfaces.filter((i) => i.up);
  if (up.length === 0) {
    return [{
      id: "no-interface",
      severity: "error",
      message: "This host has no IPv4 network interface up other than loopback: there is no LAN to announce on",
      fix: "Connect this host to the network (cable or Wi-Fi) and check that it has an address (ip addr)",
    }];
  }
  if (f.daemon && f.daemon.interfaces.length === 0 && f.daemon.staticPeers.length === 0) {
    return [{
      id: "not-announcing",
      severity: "error",
      message: `The daemon announces on no interface, though this host has ${
        up.map((i) => `${i.name} (${i.cidr})`).join(", ")
      }`,
      fix:
        "Check the daemon's --interface and --exclude-interface flags (lanchat status shows them); restart it without them",
    }];
  }
  return [];
}

function portFindings(f: DoctorFacts): Finding[] {
  if (!f.listeners) {
    return [{
      id: "ports-unread",
      severity: "info",
      message:
        "Could not list the sockets of this host (ss from iproute2 did not run): who holds lanchat's ports is not checked",
      fix: "Install iproute2 to have this checked",
    }];
  }
  const out: Finding[] = [];
  // A daemon that answered (even with an error) holds the HTTP port: its pid is the one listening there.
  const answered = f.daemon !== undefined || f.daemonStatus !== undefined;
  const http = f.ports.find((p) => p.role === "http");
  const daemonPid = f.daemon?.pid ??
    f.listeners.find((l) => answered && l.proto === "tcp" && l.port === http?.port)?.pid;
  for (const p of f.ports) {
    if (p.role === "http" && answered) continue; // the CLI reached the daemon there
    const holders = f.listeners.filter((l) => l.proto === p.proto && l.port === p.port);
    // With a daemon running, only a process seen to be another is named (not one whose pid is not ours to see).
    const others = holders.filter((l) =>
      !answered || (l.pid !== undefined && daemonPid !== undefined && l.pid !== daemonPid)
    );
    if (others.length === 0) continue;
    const who = others.map(describeListener).join(", ");
    const flag = { discovery: "--port", unicast: "--unicast-port", file: "--unicast-port", http: "--http" }[p.role] ??
      "a flag";
    if (answered) {
      out.push({
        id: "port-shared",
        severity: p.role === "discovery" ? "warning" : "error",
        message: `${p.proto.toUpperCase()} port ${p.port} (${p.role}) is also bound by ${who}` +
          (p.role === "discovery"
            ? ": both get the broadcasts, but datagrams sent to the port alone go to one of them"
            : ": datagrams meant for lanchat may go to it instead"),
        fix: `Stop that program, or run it or lanchat on another port (${flag})`,
      });
    } else {
      out.push({
        id: "port-taken",
        severity: "error",
        message: `${p.proto.toUpperCase()} port ${p.port} (${p.role}) is bound by ${who}: a lanchat daemon ${
          p.role === "unicast" || p.role === "file" ? "falls back to another port" : "cannot take it"
        }`,
        fix: `Stop that program, or start lanchat with another port (${flag})`,
      });
    }
  }
  return out;
}

function describeListener(l: Listener): string {
  if (!l.process && l.pid === undefined) return "a process of another user";
  return `${printableLine(l.process ?? "a process")}${l.pid !== undefined ? ` (pid ${l.pid})` : ""}`;
}

function firewallFindings(f: DoctorFacts): Finding[] {
  const out: Finding[] = f.firewall.hits.map((h) => {
    const ports = h.ports.map((p) => `${p.proto} ${p.port} (${p.role})`).join(", ");
    return {
      id: "firewall-drop",
      severity: h.ports.length || h.policy ? "error" : "warning",
      message: h.policy
        ? `Firewall: ${h.rule} drops what no rule accepts, and no rule was seen accepting ${ports}`
        : h.ports.length
        ? `Firewall rule drops lanchat's ${ports}: ${h.rule}`
        : `Firewall rule drops traffic it matches, lanchat's included: ${h.rule}`,
      fix: `Allow lanchat's ports from the LAN (UDP ${udpPorts(f.ports)}, TCP ${
        tcpPorts(f.ports)
      }), or remove the rule (nft -a list ruleset shows its handle; iptables -D)`,
    };
  });
  if (f.firewall.unread.length) {
    out.push({
      id: "firewall-unread",
      severity: "info",
      message: `Firewall not read: ${f.firewall.unread.join("; ")}`,
      fix: "Run lanchat doctor as root to have the firewall checked (read only)",
    });
  }
  return out;
}

function udpPorts(ports: readonly OurPort[]): string {
  return [...new Set(ports.filter((p) => p.proto === "udp").map((p) => p.port))].join(", ");
}

function tcpPorts(ports: readonly OurPort[]): string {
  return [...new Set(ports.filter((p) => p.proto === "tcp" && p.role !== "http").map((p) => p.port))].join(", ");
}

/** Whether `address` is in `cidr` (IPv4). */
export function inSubnet(address: string, cidr: string): boolean {
  const [net, len] = cidr.split("/");
  const a = ipv4(address);
  const n = ipv4(net ?? "");
  const bits = Number(len);
  if (a === undefined || n === undefined || !(bits >= 0 && bits <= 32)) return false;
  const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
  return ((a & mask) >>> 0) === ((n & mask) >>> 0);
}

function ipv4(s: string): number | undefined {
  const m = /^(?:::ffff:)?(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(s);
  return m ? m.slice(1).reduce((n, o) => n * 256 + Number(o), 0) : undefined;
}

function peerFindings(d: DiagnosticsJson, interfaces: HostInterface[]): Finding[] {
  const out: Finding[] = [];
  const quietFor = d.uptimeMs;
  // Broadcasts answered: hellos heard per interface announced on.
  if (d.peers.length === 0 && quietFor >= 3 * d.announceIntervalMs) {
    const where = d.interfaces.map((i) => `${i.interface} (${i.broadcast})`).join(", ") || "no interface";
    out.push({
      id: "no-peers",
      severity: "error",
      message:
        `No lanchat peer heard in the ${Math.round(quietFor / 1000)} s the daemon has run; it announces on ${where}` +
        (d.hellosIn > 0 ? ` (${d.hellosIn} hellos came but none was taken: see lanchat status for drops)` : ""),
      fix: "Start lanchat on another host of this network with the same network key (or none); " +
        "if one runs, run lanchat doctor there too: a firewall or Wi-Fi client isolation may drop broadcasts; " +
        "or name peers with --peer HOST",
    });
  } else if (d.peers.length > 0) {
    for (const i of d.interfaces) {
      const cidr = interfaces.find((h) => h.name === i.interface && h.address === i.address)?.cidr;
      if (!cidr) continue;
      const heard = d.helloSources.some((s) => inSubnet(s.address, cidr) && s.agoMs <= 3 * d.announceIntervalMs * 2);
      if (!heard && quietFor >= 3 * d.announceIntervalMs) {
        out.push({
          id: "quiet-interface",
          severity: "info",
          message: `No hello heard lately on ${i.interface} (${cidr}): no other lanchat host answers there`,
          fix: "Nothing to do if no lanchat host is on that network; else check it as for no peers",
        });
      }
    }
  }
  for (const p of d.peers) {
    const name = `${printableLine(p.name)} (${p.address})`;
    const fresh = 3 * Math.max(p.intervalMs, d.announceIntervalMs);
    if (
      isOneWay(
        { helloAt: p.helloAgoMs === null ? undefined : -p.helloAgoMs, unanswered: p.checksUnanswered },
        0,
        fresh,
      )
    ) {
      out.push({
        id: "one-way",
        severity: "error",
        message: `One-way link: this host hears ${name} but it does not answer (${p.checksUnanswered} pings unanswered${
          p.answerAgoMs === null ? ", never an answer" : `, last answer ${Math.round(p.answerAgoMs / 1000)} s ago`
        }): it cannot hear this host, and messages to it will not arrive`,
        fix: `Run lanchat doctor on ${printableLine(p.hostname)} too: a firewall there (or here, outgoing) may drop ` +
          `lanchat's UDP ports ${d.ports.discovery} and ${d.ports.unicast}; on Wi-Fi, turn off client (AP) isolation`,
      });
    }
    const skew = p.clockOffsetMs;
    if (skew !== undefined && d.group === "keyed" && Math.abs(skew) > d.replayWindowMs / 2) {
      out.push({
        id: "clock-skew",
        severity: "warning",
        message: `${name}'s clock is ${Math.round(Math.abs(skew) / 1000)} s ${
          skew > 0 ? "ahead of" : "behind"
        } this host's; a keyed group refuses datagrams more than ${d.replayWindowMs / 1000} s off`,
        fix: "Run NTP on both hosts (timedatectl set-ntp true, or chrony)",
      });
    }
  }
  for (const s of d.skewRejected) {
    out.push({
      id: "clock-skew-refused",
      severity: "error",
      message: `${s.count} datagram(s) from ${s.address} refused: its clock is ${
        Math.round(Math.abs(s.aheadMs) / 1000)
      } s ${s.aheadMs > 0 ? "ahead of" : "behind"} this host's, past the keyed group's ${
        d.replayWindowMs / 1000
      } s window, so it does not appear here`,
      fix: `Set the clocks right: run NTP on both hosts (timedatectl set-ntp true, or chrony)`,
    });
  }
  const newer = d.peers.filter((p) => compareVersions(p.version, d.version) > 0);
  const older = d.peers.filter((p) => compareVersions(p.version, d.version) < 0);
  if (newer.length) {
    out.push({
      id: "version-behind",
      severity: "warning",
      message: `This daemon runs lanchat ${d.version}; ${listPeers(newer)} run a newer version`,
      fix: "Update lanchat on this host (git pull in its clone, then lanchat install) and restart the daemon",
    });
  }
  if (older.length) {
    out.push({
      id: "version-ahead",
      severity: "info",
      message: `${listPeers(older)} run an older lanchat than this daemon's ${d.version}`,
      fix: "Update lanchat on those hosts when you can",
    });
  }
  return out;
}

function listPeers(peers: DiagnosticsJson["peers"]): string {
  const shown = peers.slice(0, 5).map((p) => `${printableLine(p.name)} (${printableLine(p.version)})`);
  return shown.join(", ") + (peers.length > 5 ? ` and ${peers.length - 5} more` : "");
}

/** Compares dotted versions numerically (`0.10.0` > `0.9.1`); pre-release and junk parts compare as text. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.+-]/);
  const pb = b.split(/[.+-]/);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? "0";
    const y = pb[i] ?? "0";
    if (x === y) continue;
    const nx = Number(x);
    const ny = Number(y);
    if (Number.isInteger(nx) && Number.isInteger(ny)) return nx < ny ? -1 : 1;
    return x < y ? -1 : 1;
  }
  return 0;
}

function fileFindings(files: readonly FileFact[]): Finding[] {
  return files.filter((x) => x.mode !== undefined && (x.mode & 0o077) !== 0).map((x) => ({
    id: "file-open-to-others",
    severity: "error" as const,
    message: `The ${x.what} ${x.path} has mode ${
      (x.mode! & 0o777).toString(8).padStart(3, "0")
    }: other users of this host may read it`,
    fix: `chmod ${x.what === "data directory" ? "700" : "600"} ${x.path}`,
  }));
}

function diskFindings(disks: readonly DiskFact[]): Finding[] {
  const out: Finding[] = [];
  for (const d of disks) {
    if (d.freeBytes === undefined) continue;
    const free = formatBytes(d.freeBytes);
    if (d.freeBytes < DISK_LOW_BYTES) {
      out.push({
        id: "disk-full",
        severity: "error",
        message: `The ${d.what} ${d.path} has ${free} free: ${
          d.what === "data directory" ? "messages cannot be stored" : "downloads fail"
        }`,
        fix: `Free space on that file system, or point lanchat elsewhere (${
          d.what === "data directory" ? "--data-dir" : "--downloads"
        })`,
      });
    } else if (d.freeBytes < DISK_TIGHT_BYTES && d.what !== "data directory") {
      out.push({
        id: "disk-low",
        severity: "warning",
        message: `The ${d.what} ${d.path} has ${free} free: offers that would leave less than 1 GiB are refused`,
        fix: "Free space there, or lower the daemon's --keep-free, or choose another --downloads folder",
      });
    }
  }
  return out;
}
