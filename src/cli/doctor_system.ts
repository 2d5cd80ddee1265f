/**
 * What `lanchat doctor` reads of this host, read-only: its IPv4 interfaces,
 * the sockets on lanchat's ports (`ss`), the firewall (`nft -j list
 * ruleset`, else `iptables-save`/`ip6tables-save`), the modes of the key
 * files and free space (statfs). Each read that cannot be done says why
 * instead of failing the command; the parsing is pure and tested apart.
 *
 * @module
 */
import { statfsSync } from "node:fs";
import { directedBroadcast } from "../node/net_address.ts";
import { readInterfaces } from "../node/net_address.ts";
import { type FirewallHit, iptablesHits, nftHits, type OurPort } from "./doctor_firewall.ts";
import type { DiskFact, FileFact, HostInterface, Listener } from "./doctor_findings.ts";

/** This host's IPv4 interfaces other than loopback. */
export function hostInterfaces(): HostInterface[] {
  let read: ReturnType<typeof readInterfaces>;
  try {
    read = readInterfaces();
  } catch {
    return [];
  }
  const cidrs = new Map<string, string>();
  try {
    for (const i of Deno.networkInterfaces()) cidrs.set(`${i.name} ${i.address}`, i.cidr);
  } catch { /* cidr from the netmask below */ }
  return read.addresses
    .filter((a) => a.family === "IPv4" && !a.address.startsWith("127."))
    .map((a) => ({
      name: a.name,
      address: a.address,
      cidr: cidrs.get(`${a.name} ${a.address}`) ?? `${a.address}/${prefixLength(a.netmask)}`,
      broadcast: directedBroadcast(a.address, a.netmask) ?? "",
      up: !read.down.has(a.name),
    }));
}

function prefixLength(netmask: string): number {
  return netmask.split(".").reduce((n, o) => n + (Number(o) >>> 0).toString(2).replaceAll("0", "").length, 0);
}

/** Runs a program; its stdout, or why not. */
function run(cmd: string, args: string[]): { ok: true; out: string } | { ok: false; why: string } {
  try {
    const r = new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).outputSync();
    const err = new TextDecoder().decode(r.stderr).trim().split("\n")[0] ?? "";
    if (!r.success) return { ok: false, why: `${cmd} failed${err ? `: ${err}` : ""}` };
    return { ok: true, out: new TextDecoder().decode(r.stdout) };
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { ok: false, why: `${cmd.replace(/^.*\//, "")} is not installed` };
    if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
      return { ok: false, why: `not allowed to run ${cmd}` };
    }
    return { ok: false, why: `${cmd}: ${(e as Error).message}` };
  }
}

/** The sockets listening on `ports`, from `ss`, with their owners; undefined when it cannot run. */
export function listeners(ports: readonly OurPort[]): Listener[] | undefined {
  const out: Listener[] = [];
  for (const proto of ["udp", "tcp"] as const) {
    const r = run("ss", ["-H", "-l", "-n", "-p", "-e", proto === "udp" ? "-u" : "-t"]);
    if (!r.ok) return undefined;
    out.push(...parseSs(r.out, proto).filter((l) => ports.some((p) => p.proto === proto && p.port === l.port)));
  }
  const names = userNames();
  return out.map((l) => l.uid !== undefined && names.has(l.uid) ? { ...l, user: names.get(l.uid) } : l);
}

/**
 * `ss -H -l -n -p [-e]` lines as listeners (one per process holding the
 * socket; none named when not ours to see), with the socket's uid when `-e`
 * gave it (ss leaves `uid:` out for root's sockets: 0).
 */
export function parseSs(text: string, proto: "udp" | "tcp"): Listener[] {
  const out: Listener[] = [];
  for (const line of text.split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f.length < 5) continue;
    const local = f[3]!;
    const port = Number(local.slice(local.lastIndexOf(":") + 1));
    if (!Number.isInteger(port)) continue;
    const extended = /\bino:\d+/.test(line);
    const uid = /\buid:(\d+)/.exec(line)?.[1];
    const owner = uid !== undefined ? { uid: Number(uid) } : extended ? { uid: 0 } : {};
    const users = [...line.matchAll(/\("((?:[^"\\]|\\.)*)",pid=(\d+)/g)];
    if (users.length === 0) out.push({ proto, port, ...owner });
    for (const u of users) out.push({ proto, port, process: u[1], pid: Number(u[2]), ...owner });
  }
  return out;
}

/** The user names of /etc/passwd by uid (empty when it cannot be read). */
function userNames(): Map<number, string> {
  const names = new Map<number, string>();
  try {
    for (const line of Deno.readTextFileSync("/etc/passwd").split("\n")) {
      const [name, , uid] = line.split(":");
      if (name && uid && /^\d+$/.test(uid) && !names.has(Number(uid))) names.set(Number(uid), name);
    }
  } catch { /* names unknown: uids only */ }
  return names;
}

/**
 * Where the firewall tools are (Debian, Fedora; /usr/sbin is /usr/bin on
 * Arch): named by path, since Deno's --allow-run prints a line at every start
 * for a program name it cannot find on PATH.
 */
const SBIN = "/usr/sbin";

/** Firewall rules that may drop our ports, and what could not be read. */
export function firewall(ports: readonly OurPort[]): { hits: FirewallHit[]; unread: string[]; read?: string } {
  const nft = run(`${SBIN}/nft`, ["-j", "list", "ruleset"]);
  if (nft.ok) return { hits: nftHits(nft.out, ports), unread: [], read: "nftables" };
  // No nftables: the legacy iptables tools, where present (iptables-nft's rules show in nft above).
  const hits: FirewallHit[] = [];
  const unread = [nft.why];
  let read = false;
  for (const tool of ["iptables-save", "ip6tables-save"]) {
    const r = run(`${SBIN}/${tool}`, []);
    if (r.ok) {
      read = true;
      hits.push(...iptablesHits(r.out, ports, tool.replace("-save", "")));
    } else unread.push(r.why);
  }
  return read ? { hits, unread: [], read: "iptables" } : { hits, unread };
}

/** The mode of each file that exists. */
export function fileModes(files: { what: string; path: string }[]): FileFact[] {
  return files.map((x) => {
    try {
      const mode = Deno.statSync(x.path).mode;
      return mode === null ? x : { ...x, mode: mode & 0o777 };
    } catch {
      return x;
    }
  });
}

/** Free space (for an unprivileged user) on the file system of each path, or of its nearest existing parent. */
export function freeSpace(paths: { what: string; path: string }[]): DiskFact[] {
  return paths.map((x) => {
    let probe = x.path;
    for (;;) {
      try {
        const s = statfsSync(probe);
        return { ...x, freeBytes: Number(s.bavail) * Number(s.bsize) };
      } catch (e) {
        const up = probe.replace(/\/[^/]*\/?$/, "");
        if (up === probe || up === "") return { ...x, error: (e as Error).message };
        probe = up;
      }
    }
  });
}
