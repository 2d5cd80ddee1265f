/**
 * Figures for end-to-end encryption (src/security/e2e_sessions.ts), printed,
 * never asserted: the memory one table holds for 1,000 peers with a session
 * each (issue 25's bound: 4 MiB), the cost of a handshake, and of sealing and
 * opening one datagram.
 *
 * ```
 * deno run --v8-flags=--expose-gc --allow-all scripts/bench_e2e.ts [--peers 1000] [--handshakes 300]
 * ```
 */
import { E2eLan, msgDatagram, newNode, newNodeKeys } from "../tests/support/e2e_lan.ts";
import { consumeInitiation, consumeResponse, createInitiation, createResponse } from "../src/security/e2e_handshake.ts";
import { TransportSession } from "../src/security/session.ts";
import { parseE2e } from "../src/security/e2e_wire.ts";
import { Sealer } from "../src/security/seal.ts";

const arg = (name: string, fallback: number) => {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Number(Deno.args[i + 1]) : fallback;
};
const PEERS = arg("peers", 1000);
const HANDSHAKES = arg("handshakes", 300);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("Run with --v8-flags=--expose-gc so the memory figure is measured after collection");

function used(): number {
  for (let i = 0; i < 3; i++) gc!();
  const m = Deno.memoryUsage();
  return m.heapUsed + m.external;
}

const MiB = 1024 * 1024;

/** The memory of a table with a session with each of `PEERS` peers, as initiator or as responder. */
function sessionsMemory(role: "initiator" | "responder"): { bytes: number; later: number; sessions: number } {
  const lan = new E2eLan();
  const before = used();
  const local = newNode();
  lan.add(local);
  for (let i = 0; i < PEERS; i++) {
    const remote = newNode();
    lan.add(remote);
    if (role === "initiator") lan.say(local, remote, "hello");
    else lan.say(remote, local, "hello");
    lan.say(role === "initiator" ? remote : local, role === "initiator" ? local : remote, "and back");
    lan.nodes.delete(remote.id); // the remote side's memory is not ours: let it be collected
    local.got.length = 0;
  }
  lan.log.length = 0;
  const bytes = used() - before;
  const status = local.table.status();
  if (status.peers !== PEERS) throw new Error(`expected ${PEERS} peers, the table has ${status.peers}`);
  // 1.5 s on: the deadlines of the handshakes (retries not needed) have passed and left the timer heap.
  local.table.handleTimeout(lan.now + 1_500);
  local.table.drainTransmits();
  return { bytes, later: used() - before, sessions: status.sessions };
}

for (const role of ["initiator", "responder"] as const) {
  const { bytes, later, sessions } = sessionsMemory(role);
  console.log(
    `memory: ${PEERS} peers, ${sessions} sessions, this side ${role}: ${(bytes / MiB).toFixed(2)} MiB ` +
      `right after the handshakes, ${(later / MiB).toFixed(2)} MiB 1.5 s later ` +
      `(${Math.round(bytes / PEERS)} and ${Math.round(later / PEERS)} bytes a peer; bound 4 MiB)`,
  );
}

// A handshake, both sides, in one process: what a new peer costs the two CPUs together, and each.
const a = newNodeKeys().identity, b = newNodeKeys().identity;
let tInit = 0, tResp = 0;
for (let i = 0; i < HANDSHAKES; i++) {
  let t = performance.now();
  const { initiator, bytes } = createInitiation(a, b.dh.publicKey, i, { incarnation: 1, sequence: i });
  tInit += performance.now() - t;
  t = performance.now();
  const taken = consumeInitiation(b, bytes);
  if (taken.kind !== "initiation") throw new Error(taken.detail);
  const response = createResponse(taken, i);
  tResp += performance.now() - t;
  t = performance.now();
  const done = consumeResponse(a, initiator, response.bytes);
  tInit += performance.now() - t;
  if (done.kind !== "response") throw new Error(done.detail);
}
console.log(
  `handshake: ${((tInit + tResp) / HANDSHAKES).toFixed(2)} ms per new peer, both sides ` +
    `(initiator ${(tInit / HANDSHAKES).toFixed(2)} ms, responder ${(tResp / HANDSHAKES).toFixed(2)} ms, ` +
    `with the Ed25519 check of the initiator's static key; ${HANDSHAKES} handshakes)`,
);

// Sealing and opening a full datagram (1,100 bytes of inner LNCH datagram) on one session.
const keys = {
  send: crypto.getRandomValues(new Uint8Array(32)),
  receive: new Uint8Array(32),
  handshakeHash: new Uint8Array(32),
};
const sender = new TransportSession(keys, 1, 2, true, 0);
const receiver = new TransportSession(
  { send: keys.receive, receive: keys.send, handshakeHash: keys.handshakeHash },
  2,
  1,
  false,
  0,
);
const inner = msgDatagram("a".repeat(32), "b".repeat(32), "x".repeat(900));
const N = 50_000;
let t = performance.now();
const sealed: Uint8Array[] = [];
for (let i = 0; i < N; i++) sealed.push(sender.seal(inner));
const sealMs = performance.now() - t;
t = performance.now();
for (const s of sealed) {
  const p = parseE2e(s);
  if (typeof p === "string" || p.type !== "data" || typeof receiver.open(p) === "string") {
    throw new Error("open failed");
  }
}
const openMs = performance.now() - t;
console.log(
  `datagram of ${inner.length} bytes: seal ${(sealMs / N * 1000).toFixed(1)} µs, open ${
    (openMs / N * 1000).toFixed(1)
  } µs ` +
    `(${Math.round(N / ((sealMs + openMs) / 1000))} sealed and opened a second on one core)`,
);

// For comparison, today's network key (AES-256-GCM, seal.ts) on the same datagram.
const sealer = await Sealer.create(crypto.getRandomValues(new Uint8Array(32)));
t = performance.now();
const groupSealed: Uint8Array[] = [];
for (let i = 0; i < N; i++) groupSealed.push(sealer.seal(inner, Date.now()));
const groupSealMs = performance.now() - t;
t = performance.now();
for (const s of groupSealed) if (!sealer.open(s, Date.now()).ok) throw new Error("open failed");
const groupOpenMs = performance.now() - t;
console.log(
  `the same datagram under the network key (seal.ts): seal ${(groupSealMs / N * 1000).toFixed(1)} µs, ` +
    `open ${(groupOpenMs / N * 1000).toFixed(1)} µs`,
);
