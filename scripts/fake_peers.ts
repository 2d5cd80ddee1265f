/**
 * Fake peers for benchmarks: N lanchat nodes (real Ed25519 keys, signed
 * hellos) that announce to one daemon from loopback source addresses
 * 127.0.0.2 … (at most 10 ids per address, under the roster's per-address
 * cap), every --interval, until killed. They answer pings (the failure
 * detector's probes) with a pong from each id on the probed socket, since a
 * ping does not name whom it is for; nothing else.
 *
 *   deno run -A scripts/fake_peers.ts --count 1000 --to 127.0.0.1:PORT [--interval 20000]
 *
 * Prints "ready" once every peer has announced once.
 */
import { encodeSigned, helloFor, newNodeKey } from "../tests/support/hostile.ts";
import { decodePacket, encodePacket } from "../src/wire/mod.ts";

function arg(name: string, fallback: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1]! : fallback;
}

const count = Number(arg("count", "100"));
const interval = Number(arg("interval", "20000"));
const [host, port] = arg("to", "127.0.0.1:47475").split(":");
const to: Deno.NetAddr = { transport: "udp", hostname: host!, port: Number(port) };
const PER_ADDRESS = 10;
const sockets = Array.from(
  { length: Math.ceil(count / PER_ADDRESS) },
  (_, i) => Deno.listenDatagram({ transport: "udp", hostname: `127.0.0.${2 + i}`, port: 0 }),
);
const idsOn = sockets.map(() => [] as string[]);
const peers = Array.from({ length: count }, (_, i) => {
  const key = newNodeKey();
  const socket = sockets[Math.floor(i / PER_ADDRESS)]!;
  idsOn[Math.floor(i / PER_ADDRESS)]!.push(key.id);
  const hello = { ...helloFor(key.id, `fake-${String(i).padStart(4, "0")}@bench`, (socket.addr as Deno.NetAddr).port) };
  hello.interval = interval;
  return { socket, bytes: encodeSigned(hello, key.signer) };
});
// Drain what the daemon sends back (replies, probes), so nothing piles up.
for (const [k, s] of sockets.entries()) {
  (async () => {
    const buf = new Uint8Array(2048);
    try {
      while (true) {
        const [data, from] = await s.receive(buf);
        const d = decodePacket(data);
        if (!d.ok || d.value.kind !== "ping") continue;
        for (const id of idsOn[k]!) {
          await s.send(encodePacket({ kind: "pong", id, incarnation: 1, nonce: d.value.nonce }), from);
        }
      }
    } catch { /* closed */ }
  })();
}
// Spread the announces over the interval, 10 a tick, as real peers would be spread.
let round = 0;
while (true) {
  const t0 = performance.now();
  for (let i = 0; i < peers.length; i++) {
    const p = peers[i]!;
    await p.socket.send(p.bytes, to);
    if (round > 0 && i % 10 === 9) await new Promise((r) => setTimeout(r, (interval * 0.8 * 10) / peers.length));
    else if (round === 0 && i % 40 === 39) await new Promise((r) => setTimeout(r, 50)); // under the per-source limit
  }
  if (round++ === 0) console.log("ready");
  const left = interval * 0.8 - (performance.now() - t0);
  if (left > 0) await new Promise((r) => setTimeout(r, left));
}
