/** `lanchat status`: this node and its counters. */
import type { Command } from "commander";
import { daemonUrl, getJson } from "./client.ts";

interface Status {
  id: string;
  name: string;
  version: string;
  incarnation: number;
  uptimeSeconds: number;
  ports: { discovery: number; unicast: number; http: number };
  intervalMs: number;
  interfaces: { interface: string; address: string; broadcast: string }[];
  peers: number;
  security: { group: string; keyId?: string; fingerprint: string; impersonations: { name: string; from: string }[] };
  counters: {
    datagramsIn: number;
    datagramsOut: number;
    dropped: Record<string, number>;
    peersJoined: number;
    peersLeft: Record<string, number>;
  };
}

export function registerStatus(program: Command): void {
  program.command("status")
    .description("Show the local daemon's identity, ports, interfaces and counters")
    .option("--json", "print the status as JSON, as GET /status does")
    .option("--http <host:port>", "the daemon's HTTP endpoint (default: $LANCHAT_HTTP or 127.0.0.1:47476)")
    .action(async (opts: { json?: boolean; http?: string }) => {
      const s = await getJson<Status>(daemonUrl(opts.http), "/status");
      if (opts.json) {
        console.log(JSON.stringify(s, null, 2));
        return;
      }
      const dropped = Object.entries(s.counters.dropped).filter(([, n]) => n > 0).map(([r, n]) => `${r} ${n}`);
      const left = Object.entries(s.counters.peersLeft).map(([r, n]) => `${r} ${n}`).join(", ");
      console.log(
        [
          `${s.name} (${s.id})`,
          `version ${s.version}, incarnation ${s.incarnation}, up ${s.uptimeSeconds}s`,
          `ports: discovery ${s.ports.discovery}/udp, unicast ${s.ports.unicast}/udp, http ${s.ports.http || "off"}`,
          `announcing every ${s.intervalMs} ms on: ${
            s.interfaces.map((i) => `${i.interface} (${i.broadcast})`).join(", ") || "no interface"
          }`,
          `group: ${s.security.group}${
            s.security.keyId ? ` (key id ${s.security.keyId})` : ""
          }, node key ${s.security.fingerprint}${
            s.security.impersonations.length
              ? `, ${s.security.impersonations.length} possible impersonation(s): see --json`
              : ""
          }`,
          `peers: ${s.peers} (joined ${s.counters.peersJoined}, left ${left})`,
          `datagrams: in ${s.counters.datagramsIn}, out ${s.counters.datagramsOut}, dropped ${
            dropped.join(", ") || "none"
          }`,
        ].join("\n"),
      );
    });
}
