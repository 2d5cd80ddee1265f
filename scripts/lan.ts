/**
 * A LAN lab out of network namespaces: N hosts, each with one veth link to a
 * bridge that lives in its own namespace, addresses 198.18.0.11, .12, … /24.
 * Loss is an nftables rule in the bridge's namespace (bridge family, forward
 * hook): `tc netem` is not in this kernel. Needs root.
 *
 * As a library: `const lan = await createLan(4); … await lan.destroy();`.
 * As a command:
 *   deno run -A scripts/lan.ts up 4       # prints the prefix and hosts
 *   deno run -A scripts/lan.ts down PREFIX
 *
 * Every namespace is named with a per-run random prefix; destroy() kills the
 * processes still running in them (by pid) and deletes them all.
 */

export const SUBNET = "198.18.0";

/** One host of the lab. */
export interface LanHost {
  index: number;
  /** Namespace name. */
  ns: string;
  address: string;
  /** Its IPv6 address (fd00:198:18::11, …) when the lab has IPv6. */
  address6?: string;
  /** The bridge-side end of its cable, in the bridge namespace. */
  bridgePort: string;
}

export interface Lan {
  prefix: string;
  bridgeNs: string;
  hosts: LanHost[];
  /** Drops `percent` % of UDP datagrams crossing the bridge (0 removes the rule); with `all`, of every packet (TCP too). */
  setLoss(percent: number, options?: { all?: boolean }): Promise<void>;
  /** How many datagrams the loss rule has dropped so far. */
  dropped(): Promise<number>;
  /** Pulls a host's cable: its bridge port goes down. */
  cutLink(host: LanHost): Promise<void>;
  restoreLink(host: LanHost): Promise<void>;
  /** Kills every process left in the lab's namespaces and deletes them. */
  destroy(): Promise<void>;
}

/** Runs a command, throwing with its stderr when it fails. */
export async function sh(cmd: string, args: string[], stdin?: string): Promise<string> {
  const child = new Deno.Command(cmd, {
    args,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")} failed: ${dec.decode(out.stderr).trim()}`);
  return dec.decode(out.stdout);
}

/** Whether this process can build namespaces (root, with `ip` and `nft`). Returns a reason when not. */
export async function lanUnavailable(): Promise<string | undefined> {
  if (Deno.build.os !== "linux") return "network namespaces need Linux";
  if (Deno.uid() !== 0) return "network namespaces need root";
  for (const tool of ["ip", "nft"]) {
    try {
      await sh(tool, ["-V"]);
    } catch {
      return `${tool} is not installed (apt-get install iproute2 nftables)`;
    }
  }
  return undefined;
}

/** Kills the processes left in these namespaces (by pid) and deletes them, the last made first. */
export async function deleteNamespaces(created: readonly string[]): Promise<void> {
  for (const ns of [...created].reverse()) {
    try {
      const pids = (await sh("ip", ["netns", "pids", ns])).split(/\s+/).filter(Boolean).map(Number);
      for (const pid of pids) {
        try {
          Deno.kill(pid, "SIGKILL");
        } catch { /* gone */ }
      }
    } catch { /* namespace already gone */ }
    await sh("ip", ["netns", "delete", ns]).catch(() => {});
  }
}

/** IPv6 of the lab, when asked for: fd00:198:18::11, ::12, … /64. */
export const SUBNET6 = "fd00:198:18:";

/** What each host's eth0 gets: IPv4 (198.18.0.11, … /24; the default), IPv6 (fd00:198:18::11, … /64, and link-local). */
export interface LanOptions {
  ipv4?: boolean;
  ipv6?: boolean;
}

/** Builds a lab of `n` hosts (at most 200). */
export async function createLan(
  n: number,
  prefix = `lc${crypto.randomUUID().slice(0, 6)}`,
  options: LanOptions = {},
): Promise<Lan> {
  const ipv4 = options.ipv4 ?? true;
  if (n < 1 || n > 200) throw new RangeError(`A lab has 1 to 200 hosts, not ${n}`);
  const bridgeNs = `${prefix}-br`;
  const hosts: LanHost[] = Array.from({ length: n }, (_, i) => ({
    index: i,
    ns: `${prefix}-h${i + 1}`,
    address: ipv4 ? `${SUBNET}.${11 + i}` : "",
    ...(options.ipv6 ? { address6: `${SUBNET6}:${11 + i}` } : {}),
    bridgePort: `v${i + 1}`,
  }));
  const created: string[] = [];
  const lan: Lan = {
    prefix,
    bridgeNs,
    hosts,
    async setLoss(percent, options = {}) {
      await sh("ip", ["netns", "exec", bridgeNs, "nft", "delete", "table", "bridge", "lanchat_loss"]).catch(() => {});
      if (percent <= 0) return;
      await sh(
        "ip",
        ["netns", "exec", bridgeNs, "nft", "-f", "-"],
        [
          "table bridge lanchat_loss {",
          "  chain forward {",
          "    type filter hook forward priority 0; policy accept;",
          `    ${options.all ? "" : "meta l4proto udp "}numgen random mod 100 < ${Math.round(percent)} counter drop`,
          "  }",
          "}",
        ].join("\n"),
      );
    },
    async dropped() {
      const out = await sh("ip", ["netns", "exec", bridgeNs, "nft", "list", "table", "bridge", "lanchat_loss"])
        .catch(() => "");
      return Number(/counter packets (\d+)/.exec(out)?.[1] ?? 0);
    },
    cutLink: (h) => sh("ip", ["-n", bridgeNs, "link", "set", h.bridgePort, "down"]).then(() => {}),
    restoreLink: (h) => sh("ip", ["-n", bridgeNs, "link", "set", h.bridgePort, "up"]).then(() => {}),
    destroy: () => deleteNamespaces(created),
  };
  try {
    await sh("ip", ["netns", "add", bridgeNs]);
    created.push(bridgeNs);
    await sh("ip", ["-n", bridgeNs, "link", "add", "br0", "type", "bridge"]);
    await sh("ip", ["-n", bridgeNs, "link", "set", "br0", "up"]);
    for (const h of hosts) {
      await sh("ip", ["netns", "add", h.ns]);
      created.push(h.ns);
      // An IPv4 lab is IPv4 only: without this every eth0 would get an IPv6 link-local address, and daemons
      // (which speak IPv6 by default) would hear each other on it too.
      if (!options.ipv6) {
        for (const dev of ["all", "default"]) {
          await sh("ip", ["netns", "exec", h.ns, "sysctl", "-qw", `net.ipv6.conf.${dev}.disable_ipv6=1`]);
        }
      }
      await sh("ip", [
        "-n",
        bridgeNs,
        "link",
        "add",
        h.bridgePort,
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        h.ns,
      ]);
      await sh("ip", ["-n", bridgeNs, "link", "set", h.bridgePort, "master", "br0", "up"]);
      if (ipv4) await sh("ip", ["-n", h.ns, "addr", "add", `${h.address}/24`, "dev", "eth0"]);
      if (h.address6) {
        // No duplicate address detection (nodad, accept_dad=0): addresses, link-local too, usable at once.
        for (const dev of ["all", "default", "eth0"]) {
          await sh("ip", ["netns", "exec", h.ns, "sysctl", "-qw", `net.ipv6.conf.${dev}.accept_dad=0`]);
        }
        await sh("ip", ["-n", h.ns, "addr", "add", `${h.address6}/64`, "dev", "eth0", "nodad"]);
      }
      await sh("ip", ["-n", h.ns, "link", "set", "eth0", "up"]);
      await sh("ip", ["-n", h.ns, "link", "set", "lo", "up"]);
    }
  } catch (e) {
    await lan.destroy();
    throw e;
  }
  return lan;
}

if (import.meta.main) {
  const [cmd, arg] = Deno.args;
  if (cmd === "up") {
    const lan = await createLan(Number(arg ?? 4));
    console.log(`prefix ${lan.prefix} (bridge namespace ${lan.bridgeNs})`);
    for (const h of lan.hosts) console.log(`${h.ns}\t${h.address}`);
    console.log(`run: ip netns exec ${lan.hosts[0]!.ns} deno task start`);
    console.log(`tear down: deno run -A scripts/lan.ts down ${lan.prefix}`);
  } else if (cmd === "down" && arg) {
    const names = (await sh("ip", ["netns", "list"])).split("\n").map((l) => l.split(" ")[0]!).filter((n) =>
      n.startsWith(`${arg}-`)
    );
    for (const ns of names) {
      const pids = (await sh("ip", ["netns", "pids", ns])).split(/\s+/).filter(Boolean).map(Number);
      for (const pid of pids) Deno.kill(pid, "SIGKILL");
      await sh("ip", ["netns", "delete", ns]);
    }
    console.log(`deleted ${names.length} namespaces`);
  } else {
    console.error("usage: lan.ts up [N] | down PREFIX");
    Deno.exit(2);
  }
}
