/**
 * Two subnets joined by a router (network namespaces): A is 198.18.0.0/25
 * (router .1, hosts .11, .12, …), B is 198.18.0.128/25 (router .129, hosts
 * .139, …). The router forwards unicast; broadcast stays on its subnet. It
 * may run Debian's avahi-daemon (its own /run, system bus and config, as
 * deno-facts.md says), with the reflector on or off; Avahi's tools run
 * inside that mount namespace through {@link RoutedLan.avahi}.
 */
import { deleteNamespaces, sh } from "../../scripts/lan.ts";

export interface RoutedHost {
  ns: string;
  address: string;
  subnet: "a" | "b";
}

export interface RoutedLan {
  router: string;
  hosts: RoutedHost[];
  /** Starts avahi-daemon in the router (reflector on or off). */
  startAvahi(reflector: boolean): Promise<void>;
  /** Runs an Avahi tool (avahi-browse, avahi-publish) next to the router's daemon; returns its process. */
  avahi(args: string[]): Deno.ChildProcess;
  destroy(): Promise<void>;
}

/** Whether Avahi is installed; a reason when not. */
export async function avahiUnavailable(): Promise<string | undefined> {
  for (const tool of ["avahi-daemon", "avahi-browse", "avahi-publish", "dbus-daemon"]) {
    try {
      await sh("sh", ["-c", `command -v ${tool}`]);
    } catch {
      return `${tool} is not installed (apt-get install avahi-daemon avahi-utils)`;
    }
  }
  return undefined;
}

/**
 * Builds the two subnets, `perSide` hosts on each; namespaces are named
 * `<tag><6 random hex>-…` (a short tag tells whose they are).
 */
export async function createRoutedLan(perSide: number, tag = "ld"): Promise<RoutedLan> {
  const prefix = `${tag.slice(0, 4)}${crypto.randomUUID().slice(0, 6)}`;
  const router = `${prefix}-r`;
  const hosts: RoutedHost[] = [];
  for (let i = 0; i < perSide; i++) {
    hosts.push({ ns: `${prefix}-a${i + 1}`, address: `198.18.0.${11 + i}`, subnet: "a" });
  }
  for (let i = 0; i < perSide; i++) {
    hosts.push({ ns: `${prefix}-b${i + 1}`, address: `198.18.0.${139 + i}`, subnet: "b" });
  }
  const created: string[] = [];
  const dir = await Deno.makeTempDir({ prefix: "lanchat-avahi-" });
  let holder: Deno.ChildProcess | undefined;
  const lan: RoutedLan = {
    router,
    hosts,
    async startAvahi(reflector) {
      const conf = `${dir}/avahi-daemon.conf`;
      await Deno.writeTextFile(
        conf,
        `[server]\nuse-ipv4=yes\nuse-ipv6=no\nenable-dbus=yes\nallow-interfaces=ra,rb\n` +
          `[reflector]\nenable-reflector=${
            reflector ? "yes" : "no"
          }\n[publish]\npublish-hinfo=no\npublish-workstation=no\n`,
      );
      // A mount namespace of its own (private /run) held by a shell that waits; the tools join it by its pid.
      holder = new Deno.Command("ip", {
        args: [
          "netns",
          "exec",
          router,
          "unshare",
          "--mount",
          "--uts",
          "bash",
          "-c",
          `mount -t tmpfs tmpfs /run && mkdir -p /run/dbus /run/avahi-daemon && hostname ${prefix}-router && ` +
          `dbus-daemon --system --fork --nopidfile && avahi-daemon -f ${conf} --no-drop-root --no-chroot -D && ` +
          `echo ready && exec sleep 100000`,
        ],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const reader = holder.stdout.pipeThrough(new TextDecoderStream()).getReader();
      const { value } = await reader.read();
      reader.releaseLock();
      if (!value?.includes("ready")) {
        const err = await new Response(holder.stderr).text();
        throw new Error(`avahi-daemon did not start in ${router}: ${err}`);
      }
      // Avahi probes its host name before it reflects or answers: about a second.
      await new Promise((r) => setTimeout(r, 1500));
    },
    avahi(args) {
      if (!holder) throw new Error("avahi-daemon is not running");
      return new Deno.Command("nsenter", {
        args: ["-t", String(holder.pid), "-m", "-n", "--", ...args],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
    },
    async destroy() {
      await deleteNamespaces(created);
      if (holder) await holder.status.catch(() => {});
      await holder?.stdout.cancel().catch(() => {});
      await holder?.stderr.cancel().catch(() => {});
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
  try {
    await sh("ip", ["netns", "add", router]);
    created.push(router);
    await sh("ip", ["netns", "exec", router, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    await sh("ip", ["-n", router, "link", "set", "lo", "up"]);
    for (const side of ["a", "b"] as const) {
      const br = `br${side}`;
      await sh("ip", ["-n", router, "link", "add", br, "type", "bridge"]);
      await sh("ip", ["-n", router, "link", "set", br, "up"]);
      // The router's own leg on the subnet: ra/rb, a veth whose other end is on the bridge.
      await sh("ip", ["-n", router, "link", "add", `r${side}`, "type", "veth", "peer", "name", `r${side}p`]);
      await sh("ip", ["-n", router, "link", "set", `r${side}p`, "master", br, "up"]);
      await sh("ip", [
        "-n",
        router,
        "addr",
        "add",
        side === "a" ? "198.18.0.1/25" : "198.18.0.129/25",
        "dev",
        `r${side}`,
      ]);
      await sh("ip", ["-n", router, "link", "set", `r${side}`, "up"]);
    }
    for (const [i, h] of hosts.entries()) {
      await sh("ip", ["netns", "add", h.ns]);
      created.push(h.ns);
      const port = `p${i}`;
      await sh("ip", ["-n", router, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", h.ns]);
      await sh("ip", ["-n", router, "link", "set", port, "master", `br${h.subnet}`, "up"]);
      await sh("ip", ["-n", h.ns, "addr", "add", `${h.address}/25`, "dev", "eth0"]);
      await sh("ip", ["-n", h.ns, "link", "set", "eth0", "up"]);
      await sh("ip", ["-n", h.ns, "link", "set", "lo", "up"]);
      await sh("ip", ["-n", h.ns, "route", "add", "default", "via", h.subnet === "a" ? "198.18.0.1" : "198.18.0.129"]);
    }
  } catch (e) {
    await lan.destroy();
    throw e;
  }
  return lan;
}
