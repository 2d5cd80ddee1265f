/** `lanchat status`: this node and its counters, for people (`--json` for scripts). */
import type { Command } from "commander";
import { daemonUrl, getJson } from "./client.ts";
import { httpOption } from "./options.ts";
import { printableLine } from "../common/printable.ts";

interface Status {
  id: string;
  name: string;
  version: string;
  incarnation: number;
  uptimeSeconds: number;
  dataDir: string;
  ports: { discovery: number; unicast: number; http: number };
  http?: { lan?: string[] } | null;
  notifications?: { enabled: boolean; off?: string; shown: number };
  intervalMs: number;
  announceIntervalMs?: number;
  interfaces: { interface: string; address: string; broadcast: string }[];
  /** IPv6 interfaces multicast on (absent from a daemon before IPv6). */
  interfaces6?: { interface: string; group: string; listening: boolean }[];
  peers: number;
  security: {
    group: string;
    keyId?: string;
    fingerprint: string;
    impersonations: { name: string; from: string }[];
    keyChanges?: { id: string; name: string; note: string }[];
  };
  counters: {
    datagramsIn: number;
    datagramsOut: number;
    dropped: Record<string, number>;
    peersJoined: number;
    peersLeft: Record<string, number>;
    fdExhausted?: number;
  };
  messaging?: { messagesReceived: number; messagesSent: number; outbox: number };
  ipmsg: { peers: number } | null;
  presence?: "online" | "away" | "busy";
  note?: string;
  files?: { active: number; waiting: number };
  groups?: number;
  groupMessagesRefused?: number;
  /** What is wrong that a user must act on (a damaged database), in words. */
  problems?: string[];
}

/** A duration for people: `500 ms`, `2 s`, `1.5 s`, `5m 3s`, `3h 12m`, `2d 4h`. */
export function humanDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${Number.isInteger(s) ? s : s.toFixed(1)} s`;
  const units: [string, number][] = [["d", 86_400], ["h", 3600], ["m", 60], ["s", 1]];
  const parts: string[] = [];
  let left = Math.floor(s);
  for (const [unit, size] of units) {
    const n = Math.floor(left / size);
    if (n > 0 || parts.length > 0) parts.push(`${n}${unit}`);
    left -= n * size;
    if (parts.length === 2) break;
  }
  return parts.filter((p) => !/^0[a-z]$/.test(p)).join(" ") || "0s";
}

export function registerStatus(program: Command): void {
  program.command("status")
    .description("Show the local daemon: identity, uptime, group, ports, interfaces, peers, messages, counters")
    .option("--json", "print the status as JSON, as GET /status does")
    .addOption(httpOption())
    .action(async (opts: { json?: boolean; http?: string }) => {
      const s = await getJson<Status>(daemonUrl(opts.http), "/status");
      if (opts.json) {
        console.log(JSON.stringify(s, null, 2));
        return;
      }
      console.log(describeStatus(s).join("\n"));
    });
}

/** The lines `lanchat status` prints. */
export function describeStatus(s: Status): string[] {
  const dropped = Object.entries(s.counters.dropped).filter(([, n]) => n > 0).map(([r, n]) => `${r} ${n}`);
  const left = Object.entries(s.counters.peersLeft).map(([r, n]) => `${r} ${n}`).join(", ");
  const group = s.security.group === "keyed"
    ? `keyed (network key id ${s.security.keyId}): only hosts with that key see this one`
    : "open (no network key): every lanchat host on the LAN sees this one";
  const interval = s.announceIntervalMs && s.announceIntervalMs !== s.intervalMs
    ? `${humanDuration(s.announceIntervalMs)} (scaled up from ${humanDuration(s.intervalMs)} for the LAN's size)`
    : humanDuration(s.intervalMs);
  const lines = [
    ...(s.problems ?? []).map((p) => `PROBLEM: ${printableLine(p)}`),
    `${printableLine(s.name)} (${s.id})`,
    `up ${humanDuration(s.uptimeSeconds * 1000)}, version ${s.version}, incarnation ${s.incarnation}`,
    `presence: ${s.presence ?? "online"}${s.note ? `: ${printableLine(s.note)}` : ""}`,
    `data directory: ${s.dataDir}`,
    `group: ${group}`,
    `node key: ${s.security.fingerprint}${
      s.security.impersonations.length
        ? `; ${s.security.impersonations.length} possible impersonation(s): see lanchat status --json`
        : ""
    }`,
    ...(s.security.keyChanges ?? []).map((k) => `KEY CHANGED (${k.id.slice(0, 12)}): ${printableLine(k.note)}`),
    `ports: discovery ${s.ports.discovery}/udp, unicast ${s.ports.unicast}/udp, http ${s.ports.http || "off"}${
      s.http?.lan?.length ? `; the page on the LAN at ${s.http.lan.join(", ")} (lanchat web --lan)` : ""
    }`,
    `desktop notifications: ${
      !s.notifications
        ? "off"
        : s.notifications.enabled
        ? `on (${s.notifications.shown} shown)`
        : `off: ${s.notifications.off ?? "unavailable"}`
    }`,
    `announcing every ${interval} on: ${
      [
        ...s.interfaces.map((i) => `${i.interface} (${i.broadcast})`),
        ...(s.interfaces6 ?? []).map((m) =>
          `${m.interface} (${m.group.split("%")[0]}${m.listening ? "" : ", cannot listen"})`
        ),
      ].join(", ") || "no interface"
    }`,
    `peers: ${s.peers} online${
      s.ipmsg ? ` (${s.ipmsg.peers} of them IP Messenger)` : ""
    }; joined ${s.counters.peersJoined}, left ${left || "none"}`,
  ];
  if (s.messaging) {
    lines.push(
      `messages since start: ${s.messaging.messagesReceived} received, ${s.messaging.messagesSent} sent; ` +
        `outbox: ${s.messaging.outbox} waiting for delivery`,
    );
  }
  if (s.files) lines.push(`file transfers: ${s.files.active} active, ${s.files.waiting} waiting`);
  if (s.groups !== undefined) {
    lines.push(
      `groups: ${s.groups}${
        s.groupMessagesRefused ? ` (${s.groupMessagesRefused} group messages changed no group: see the log)` : ""
      }`,
    );
  }
  lines.push(
    `datagrams: in ${s.counters.datagramsIn}, out ${s.counters.datagramsOut}, dropped ${dropped.join(", ") || "none"}`,
  );
  if (s.counters.fdExhausted) lines.push(`out of file descriptors ${s.counters.fdExhausted} times: raise ulimit -n`);
  return lines;
}
