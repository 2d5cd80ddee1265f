/**
 * The failure detector's packets (see protocol/failure_detector.ts):
 *
 * - `suspect` (type 10), broadcast: "I probed `suspect` (incarnation
 *   `si`), directly and through others, and it did not answer". Signed like
 *   a hello (a signature block after the JSON), so a receiver knows who
 *   suspects; the suspect refutes it with its own signed hello.
 * - `preq` (type 11), unicast: "ping `target` at `address`:`port` for me";
 *   the receiver pings it with a nonce of its own and, on the pong, answers
 *   with a `pack` carrying the asker's nonce `n`.
 * - `pack` (type 12), unicast: the relayed answer.
 *
 * A version before them drops all three as an unknown type (counted): it
 * is never asked to relay (its hello carries no `fd`), and a suspicion of
 * it is settled by a direct ping, which every version answers.
 *
 * @module
 */
/** A signature block as decoded (the same shape as a hello's `Signed`, kept here so the modules stay acyclic). */
export interface SuspectSignature {
  publicKey: Uint8Array;
  signature: Uint8Array;
  data: Uint8Array;
}

/** A broadcast suspicion of `suspect`. */
export interface Suspect {
  kind: "suspect";
  id: string;
  incarnation: number;
  suspect: string;
  suspectIncarnation: number;
  nonce: number;
  signed?: SuspectSignature;
}

/** A request to ping `target` on the sender's behalf. */
export interface PingReq {
  kind: "preq";
  id: string;
  incarnation: number;
  target: string;
  address: string;
  port: number;
  nonce: number;
}

/** `target` answered the ping asked for with nonce `nonce`. */
export interface PingAck {
  kind: "pack";
  id: string;
  incarnation: number;
  target: string;
  nonce: number;
}

export type ProbePacket = Suspect | PingReq | PingAck;

/** The JSON fields of one of the failure detector's packets. */
export function probePacketFields(p: ProbePacket): Record<string, unknown> {
  switch (p.kind) {
    case "suspect":
      return { id: p.id, inc: p.incarnation, s: p.suspect, si: p.suspectIncarnation, n: p.nonce };
    case "preq":
      return { id: p.id, inc: p.incarnation, t: p.target, a: p.address, p: p.port, n: p.nonce };
    case "pack":
      return { id: p.id, inc: p.incarnation, t: p.target, n: p.nonce };
  }
}

const ID = /^[0-9a-f]{32}$/;
const V4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
/** An IPv6 address as text (checked loosely: hex groups and colons, an optional zone). */
const V6 = /^[0-9a-fA-F:.]{2,45}(%[A-Za-z0-9_.-]{1,32})?$/;

function uint(b: Record<string, unknown>, key: string, max: number): number | string {
  const v = b[key];
  return typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= max
    ? v
    : `${key}: expected an integer 0..${max}`;
}

/** One of the failure detector's packets from its fields, or what is wrong with them. */
export function validateProbePacket(
  kind: ProbePacket["kind"],
  b: Record<string, unknown>,
  id: string,
  incarnation: number,
): ProbePacket | string {
  const nonce = uint(b, "n", 0xffff_ffff);
  if (typeof nonce === "string") return nonce;
  const other = kind === "suspect" ? b.s : b.t;
  if (typeof other !== "string" || !ID.test(other)) return `${kind === "suspect" ? "s" : "t"}: expected a node id`;
  if (kind === "suspect") {
    const si = uint(b, "si", Number.MAX_SAFE_INTEGER);
    if (typeof si === "string") return si;
    return { kind, id, incarnation, suspect: other, suspectIncarnation: si, nonce };
  }
  if (kind === "pack") return { kind, id, incarnation, target: other, nonce };
  const address = b.a;
  if (typeof address !== "string" || !(V4.test(address) || (address.includes(":") && V6.test(address)))) {
    return "a: expected an IP address";
  }
  const port = uint(b, "p", 65535);
  if (typeof port === "string" || port < 1) return "p: expected a port 1..65535";
  return { kind, id, incarnation, target: other, address, port, nonce };
}
