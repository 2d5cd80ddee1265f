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
import { E2eLan, type E2eNode, msgDatagram, newNode, newNodeKeys } from "../tests/support/e2e_lan.ts";
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

/**
 * The memory of a table with a session with each of `PEERS` peers, as initiator or as responder: what the
 * process holds with the table less what it holds once the table is dropped (so code compiled and caches
 * warmed on the way, ~1 MiB here, are not counted as the table's).
 */
function buildTable(role: "initiator" | "responder"): E2eNode {
  const lan = new E2eLan();
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
  const status = local.table.status();
  if (status.peers !== PEERS || status.sessions !== PEERS) throw new Error(`table: ${JSON.stringify(status)}`);
  // 1.5 s on: the deadlines of the handshakes (no retry needed) have passed and left the timer heap.
  local.table.handleTimeout(lan.now + 1_500);
  local.table.drainTransmits();
  return local;
}

async function sessionsMemory(role: "initiator" | "responder"): Promise<number> {
  const box: { node?: E2eNode } = { node: buildTable(role) };
  await new Promise((resolve) => setTimeout(resolve, 0));
  const withTable = used();
  const gone = new WeakRef(box.node!.table);
  box.node = undefined;
  await new Promise((resolve) => setTimeout(resolve, 0)); // a WeakRef keeps its target until the job ends
  const without = used();
  if (gone.deref()) throw new Error("the table is still reachable: the figure would be wrong");
  return withTable - without;
}

for (const role of ["initiator", "responder"] as const) {
  const bytes = await sessionsMemory(role);
  console.log(
    `memory: ${PEERS} peers with a session each, this side ${role}: ${(bytes / MiB).toFixed(2)} MiB ` +
      `(${Math.round(bytes / PEERS)} bytes a peer; bound 4 MiB)`,
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
/** µs per call of `f` over N calls, nothing kept (so the collector does not weigh on the figure). */
function perCall(f: (i: number) => unknown): number {
  const t = performance.now();
  for (let i = 0; i < N; i++) f(i);
  return (performance.now() - t) / N * 1000;
}
const sealUs = perCall(() => sender.seal(inner));
const sealed = Array.from({ length: N }, () => sender.seal(inner));
const openUs = perCall((i) => {
  const p = parseE2e(sealed[i]!);
  if (typeof p === "string" || p.type !== "data" || typeof receiver.open(p) === "string") {
    throw new Error("open failed");
  }
});
sealed.length = 0;
console.log(
  `datagram of ${inner.length} bytes: seal ${sealUs.toFixed(1)} µs, open ${openUs.toFixed(1)} µs ` +
    `(${Math.round(1e6 / (sealUs + openUs))} sealed and opened a second on one core)`,
);

// For comparison, today's network key (AES-256-GCM, seal.ts) on the same datagram.
const sealer = await Sealer.create(crypto.getRandomValues(new Uint8Array(32)));
const groupSealUs = perCall(() => sealer.seal(inner, Date.now()));
const groupSealed = Array.from({ length: N }, () => sealer.seal(inner, Date.now()));
const groupOpenUs = perCall((i) => {
  if (!sealer.open(groupSealed[i]!, Date.now()).ok) throw new Error("open failed");
});
console.log(
  `the same datagram under the network key (seal.ts): seal ${groupSealUs.toFixed(1)} µs, open ${
    groupOpenUs.toFixed(1)
  } µs`,
);
