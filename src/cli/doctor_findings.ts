/**
 * `lanchat doctor`'s findings, each with its fix in words, from facts
 * gathered elsewhere (cli/doctor_system.ts reads the host, the daemon's
 * `GET /diagnostics` what it knows): pure, so each finding is tested from
 * canned inputs. What came from the network or another process (names,
 * versions, paths, rules, an HTTP answer) goes into a message through `show`:
 * made printable for a terminal by default, left exact for `--json`.
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
  /** Its owner's uid (`ss -e`), and the name of that user when known. */
  uid?: number;
  user?: string;
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
  /** The uid running doctor (undefined: not known). */
  uid?: number;
}

/** Free space below which writing fails soon (the database, a download). */
export const DISK_LOW_BYTES = 64 * 1024 ** 2;
/** Below this, offers bigger than what is left are refused (the daemon keeps 1 GiB free by default). */
export const DISK_TIGHT_BYTES = 1024 ** 3;

/** How a value from outside goes into a message: {@link printableLine} for a terminal, as it is for JSON. */
export type Show = (s: string) => string;

/** Every finding, errors first; `show` as {@link Show} says. */
export function findings(f: DoctorFacts, show: Show = printableLine): Finding[] {
  const out = [
    ...daemonFindings(f, show),
    ...interfaceFindings(f, show),
    ...portFindings(f, show),
    ...firewallFindings(f, show),
    ...(f.daemon ? peerFindings(f.daemon, f.interfaces, show) : []),
    ...fileFindings(f.files, show),
    ...diskFindings(f.disks, show),
  ];
  const rank = { error: 0, warning: 1, info: 2 };
  return out.sort((a, b) => rank[a.severity] - rank[b.severity]);
}

/** Whether all is well: nothing but notes. */
export function allWell(list: readonly Finding[]): boolean {
  return list.every((x) => x.severity === "info");
}

/**
 * The listeners of the HTTP port that belong to another user than the one
 * running doctor: another user's daemon (or program) holds it.
 */
export function httpStrangers(f: DoctorFacts): Listener[] {
  const http = f.ports.find((p) => p.role === "http");
  if (!http || f.uid === undefined || !f.listeners) return [];
  return f.listeners.filter((l) => l.proto === "tcp" && l.port === http.port && l.uid !== undefined && l.uid !== f.uid);
}

/** `nobody (uid 65534)`, or `uid 65534`. */
function whose(l: Listener, show: Show): string {
  return l.user ? `${show(l.user)} (uid ${l.uid})` : `uid ${l.uid}`;
}

function daemonFindings(f: DoctorFacts, show: Show): Finding[] {
  if (f.daemon) return [];
  const url = show(f.daemonUrl);
  const why = f.daemonError === undefined ? "" : show(f.daemonError);
  if (f.daemonStatus === 404 || f.daemonStatus === 501) {
    return [{
      id: "daemon-outdated",
      severity: "error",
      message: `The daemon at ${url} keeps no diagnostics (it runs an older lanchat than this command's ${
        show(f.version)
      }); only the host is checked`,
      fix: "Restart the daemon so that it runs this version: stop it and run lanchat daemon again " +
        "(a service: systemctl --user restart lanchat.service, or for a system one systemctl restart lanchat.service)",
    }];
  }
  if (f.daemonStatus !== undefined) {
    const stranger = f.daemonStatus === 401 ? httpStrangers(f)[0] : undefined;
    if (stranger) {
      const user = stranger.user ? show(stranger.user) : `'#${stranger.uid}'`;
      return [{
        id: "daemon-refused",
        severity: "error",
        message: `The daemon at ${url} is another user's (${whose(stranger, show)}${
          stranger.pid !== undefined ? `, pid ${stranger.pid}` : ""
        }): it refused this command (${why}); only the host is checked`,
        fix: `To check that daemon, run lanchat doctor as its user (sudo -u ${user} lanchat doctor); ` +
          "to run your own beside it, give yours another HTTP port (lanchat daemon --http 127.0.0.1:47486, " +
          "then LANCHAT_HTTP=127.0.0.1:47486 for the commands)",
      }];
    }
    return [{
      id: "daemon-refused",
      severity: "error",
      message: `The daemon at ${url} refused this command (${why}); only the host is checked`,
      fix: f.daemonStatus === 401
        ? "Run lanchat doctor as the user the daemon runs as, or set LANCHAT_HTTP_TOKEN to the token in its data directory"
        : "See the daemon's log",
    }];
  }
  return [{
    id: "daemon-not-running",
    severity: "error",
    message: `No lanchat daemon answers at ${url}${why ? ` (${why})` : ""}; ` +
      "what only a running daemon knows (peers, one-way links, clocks) is not checked",
    fix: "Start it: lanchat daemon (or lanchat service install to have it start with the system)",
  }];
}

function interfaceFindings(f: DoctorFacts, show: Show): Finding[] {
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
        up.map((i) => `${show(i.name)} (${i.cidr})`).join(", ")
      }`,
      fix:
        "Check the daemon's --interface and --exclude-interface flags (lanchat status shows them); restart it without them",
    }];
  }
  return [];
}

function portFindings(f: DoctorFacts, show: Show): Finding[] {
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
    const who = others.map((l) => describeListener(l, show)).join(", ");
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
        fix: `Stop that program or move it to another port; or give lanchat daemon another one (${flag})`,
      });
    } else {
      out.push({
        id: "port-taken",
        severity: "error",
        message: `${p.proto.toUpperCase()} port ${p.port} (${p.role}) is bound by ${who}: a lanchat daemon ${
          p.role === "unicast" || p.role === "file" ? "falls back to another port" : "cannot take it"
        }`,
        fix: `Stop that program, or start lanchat daemon with another port (${flag})`,
      });
    }
  }
  return out;
}

function describeListener(l: Listener, show: Show): string {
  if (!l.process && l.pid === undefined) {
    return l.uid === undefined ? "a process of another user" : `a process of ${whose(l, show)}`;
  }
  return `${show(l.process ?? "a process")}${l.pid !== undefined ? ` (pid ${l.pid})` : ""}`;
}

function firewallFindings(f: DoctorFacts, show: Show): Finding[] {
  const out: Finding[] = f.firewall.hits.map((h) => {
    const ports = h.ports.map((p) => `${p.proto} ${p.port} (${p.role})`).join(", ");
    return {
      id: "firewall-drop",
      severity: h.ports.length || h.policy ? "error" : "warning",
      message: h.policy
        ? `Firewall: ${show(h.rule)} drops what no rule accepts, and no rule was seen accepting ${ports}`
        : h.ports.length
        ? `Firewall rule drops lanchat's ${ports}: ${show(h.rule)}`
        : `Firewall rule drops traffic it matches, lanchat's included: ${show(h.rule)}`,
      fix: `Allow lanchat's ports from the LAN (UDP ${udpPorts(f.ports)}, TCP ${
        tcpPorts(f.ports)
      }), or remove the rule (nft -a list ruleset shows its handle; iptables -D)`,
    };
  });
  if (f.firewall.unread.length) {
    out.push({
      id: "firewall-unread",
      severity: "info",
      message: `Firewall not read: ${f.firewall.unread.map(show).join("; ")}`,
      fix: f.firewall.unread.every((why) => why.endsWith(" is not installed"))
        ? "Install nftables (the nft command) to have the firewall checked"
        : f.uid === 0
        ? "Check why it could not be read (said above); nft list ruleset or iptables-save shows the rules"
        : "Run lanchat doctor as root (sudo lanchat doctor) to have the firewall checked (read only)",
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

/**
 * No peer now: all gone (peers joined, or hellos came from others, then
 * stopped), hellos that made no peer, or nobody ever heard.
 */
function noPeers(d: DiagnosticsJson, show: Show): Finding {
  const where = d.interfaces.map((i) => `${show(i.interface)} (${show(i.broadcast)})`).join(", ") || "no interface";
  const last = [...d.helloSources].sort((a, b) => a.agoMs - b.agoMs)[0];
  const lastHello = last ? `the last hello came ${seconds(last.agoMs)} ago from ${show(last.address)}` : "";
  const joined = d.peersJoined ?? 0;
  if (joined > 0 || (d.peersJoined === undefined && last)) {
    const left = d.peersLeft ? ` (${d.peersLeft.goodbye} said goodbye, ${d.peersLeft.timeout} stopped answering)` : "";
    return {
      id: "no-peers",
      severity: "error",
      message: (joined > 0
        ? `${joined} peer(s) heard since the daemon started, all gone now${left}`
        : "No peer now, though hellos were heard: the peers that sent them are gone") +
        (lastHello ? `; ${lastHello}` : ""),
      fix: "If they should still be here: their daemons may have stopped (lanchat status there), " +
        "or a firewall or Wi-Fi client isolation started dropping lanchat's traffic (run lanchat doctor on those hosts)",
    };
  }
  return {
    id: "no-peers",
    severity: "error",
    message: `No lanchat peer heard in the ${seconds(d.uptimeMs)} the daemon has run; it announces on ${where}` +
      (d.hellosIn > 0 ? ` (${d.hellosIn} hellos came but made no peer: see lanchat status for drops)` : ""),
    fix: "Start a lanchat daemon on another host of this network with the same network key (or none); " +
      "if one runs, run lanchat doctor there too: a firewall or Wi-Fi client isolation may drop broadcasts; " +
      "or name peers with --peer HOST",
  };
}

function seconds(ms: number): string {
  return `${Math.round(ms / 1000)} s`;
}

function peerFindings(d: DiagnosticsJson, interfaces: HostInterface[], show: Show): Finding[] {
  const out: Finding[] = [];
  const quietFor = d.uptimeMs;
  // Broadcasts answered: hellos heard per interface announced on.
  if (d.peers.length === 0 && quietFor >= 3 * d.announceIntervalMs) {
    out.push(noPeers(d, show));
  } else if (d.peers.length > 0) {
    for (const i of d.interfaces) {
      const cidr = interfaces.find((h) => h.name === i.interface && h.address === i.address)?.cidr;
      if (!cidr) continue;
      const heard = d.helloSources.some((s) => inSubnet(s.address, cidr) && s.agoMs <= 3 * d.announceIntervalMs * 2);
      if (!heard && quietFor >= 3 * d.announceIntervalMs) {
        out.push({
          id: "quiet-interface",
          severity: "info",
          message: `No hello heard lately on ${show(i.interface)} (${cidr}): no other lanchat host answers there`,
          fix: "Nothing to do if no other host of that network runs lanchat; else check it as for no peers",
        });
      }
    }
  }
  for (const p of d.peers) {
    const name = `${show(p.name)} (${show(p.address)})`;
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
        fix: `Run lanchat doctor on ${show(p.hostname)} too: a firewall there (or here, outgoing) may drop ` +
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
      message: `${s.count} datagram(s) from ${show(s.address)} refused: its clock is ${
        Math.round(Math.abs(s.aheadMs) / 1000)
      } s ${s.aheadMs > 0 ? "ahead of" : "behind"} this host's, past the keyed group's ${
        d.replayWindowMs / 1000
      } s window, so it does not appear here`,
      fix: `Set the clocks right: run NTP on both hosts (timedatectl set-ntp true, or chrony)`,
    });
  }
  const newer = d.peers.filter((p) => compareVersions(p.version, d.version) > 0);
  const older = d.peers.filter((p) => compareVersions(p.version, d.version) < 0);
  // A peer's version is what it says of itself: a note, never a reason to fail.
  if (newer.length) {
    out.push({
      id: "version-behind",
      severity: "info",
      message: `This daemon runs lanchat ${show(d.version)}; ${listPeers(newer, show)} say they run a newer version`,
      fix: "Update this host when you can (git pull in its clone, then lanchat install) and restart the daemon",
    });
  }
  if (older.length) {
    out.push({
      id: "version-ahead",
      severity: "info",
      message: `${listPeers(older, show)} say they run an older lanchat than this daemon's ${show(d.version)}`,
      fix: "Update those hosts when you can",
    });
  }
  return out;
}

function listPeers(peers: DiagnosticsJson["peers"], show: Show): string {
  const shown = peers.slice(0, 5).map((p) => `${show(p.name)} (${show(p.version)})`);
  return shown.join(", ") + (peers.length > 5 ? ` and ${peers.length - 5} more` : "");
}

const SEMVER = /^v?(\d+(?:\.\d+)*)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]*)?$/;

/**
 * Orders versions as semver does: numeric parts numerically (`0.10.0` >
 * `0.9.1`, `1.0` = `1.0.0`), a pre-release below its release (`0.1.0-rc.1` <
 * `0.1.0`; its dot-separated parts: numbers numerically, below words, words
 * as ASCII text), build metadata ignored. NaN (neither older nor newer) when
 * either is not a version.
 */
export function compareVersions(a: string, b: string): number {
  const ma = SEMVER.exec(a);
  const mb = SEMVER.exec(b);
  if (!ma || !mb) return NaN;
  const na = ma[1]!.split(".").map(Number);
  const nb = mb[1]!.split(".").map(Number);
  for (let i = 0; i < Math.max(na.length, nb.length); i++) {
    const d = Math.sign((na[i] ?? 0) - (nb[i] ?? 0));
    if (d) return d;
  }
  const pa = ma[2];
  const pb = mb[2];
  if (pa === undefined || pb === undefined) return pa === pb ? 0 : pa === undefined ? 1 : -1;
  const xa = pa.split(".");
  const xb = pb.split(".");
  for (let i = 0; i < Math.max(xa.length, xb.length); i++) {
    const x = xa[i];
    const y = xb[i];
    if (x === y) continue;
    if (x === undefined || y === undefined) return x === undefined ? -1 : 1;
    const nx = /^\d+$/.test(x);
    const ny = /^\d+$/.test(y);
    if (nx && ny) return Math.sign(Number(x) - Number(y)) || (x < y ? -1 : 1);
    if (nx !== ny) return nx ? -1 : 1;
    return x < y ? -1 : 1;
  }
  return 0;
}

function fileFindings(files: readonly FileFact[], show: Show): Finding[] {
  return files.filter((x) => x.mode !== undefined && (x.mode & 0o077) !== 0).map((x) => ({
    id: "file-open-to-others",
    severity: "error" as const,
    message: `The ${x.what} ${show(x.path)} has mode ${
      (x.mode! & 0o777).toString(8).padStart(3, "0")
    }: other users of this host may read it`,
    fix: `chmod ${x.what === "data directory" ? "700" : "600"} ${show(x.path)}`,
  }));
}

function diskFindings(disks: readonly DiskFact[], show: Show): Finding[] {
  const out: Finding[] = [];
  for (const d of disks) {
    if (d.freeBytes === undefined) continue;
    const free = formatBytes(d.freeBytes);
    if (d.freeBytes < DISK_LOW_BYTES) {
      out.push({
        id: "disk-full",
        severity: "error",
        message: `The ${d.what} ${show(d.path)} has ${free} free: ${
          d.what === "data directory" ? "messages cannot be stored" : "downloads fail"
        }`,
        fix: `Free space on that file system, or start lanchat daemon elsewhere (${
          d.what === "data directory" ? "--data-dir" : "--downloads"
        })`,
      });
    } else if (d.freeBytes < DISK_TIGHT_BYTES && d.what !== "data directory") {
      out.push({
        id: "disk-low",
        severity: "warning",
        message: `The ${d.what} ${show(d.path)} has ${free} free: offers that would leave less than 1 GiB are refused`,
        fix: "Free space there, or lower the daemon's --keep-free, or choose another --downloads folder",
      });
    }
  }
  return out;
}
