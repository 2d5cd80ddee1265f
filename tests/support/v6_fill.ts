/**
 * One host, many IPv6 addresses of its /64 (added beforehand), 16 node ids
 * each: signed hellos advertising a 1 h interval, sent twice to TO:PORT
 * (hostile finding 1). Run inside the attacker's namespace:
 *   deno run -A tests/support/v6_fill.ts PREFIX COUNT TO PORT
 * where the addresses are PREFIX1 … PREFIXCOUNT (hex), e.g. fd00:198:18::1:
 */
import { encodeSigned, helloFor, newNodeKey } from "./hostile.ts";

const [prefix, count, to, port] = Deno.args as [string, string, string, string];
const sockets = Array.from(
  { length: Number(count) },
  (_, i) => Deno.listenDatagram({ transport: "udp", hostname: `${prefix}${(i + 1).toString(16)}`, port: 0 }),
);
const packets: [Deno.DatagramConn, Uint8Array][] = [];
for (const s of sockets) {
  for (let j = 0; j < 16; j++) {
    const key = newNodeKey();
    const hello = { ...helloFor(key.id, `fill-${packets.length}`, (s.addr as Deno.NetAddr).port), interval: 3_600_000 };
    packets.push([s, encodeSigned(hello, key.signer)]);
  }
}
for (let round = 0; round < 2; round++) {
  for (const [i, [s, b]] of packets.entries()) {
    await s.send(b, { transport: "udp", hostname: to, port: Number(port) });
    if (i % 16 === 15) await new Promise((r) => setTimeout(r, 5));
  }
  await new Promise((r) => setTimeout(r, 300));
}
for (const s of sockets) s.close();
console.log(packets.length);
