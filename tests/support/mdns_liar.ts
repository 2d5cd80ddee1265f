/**
 * A hostile mDNS responder for the DNS-SD LAN test, run inside a namespace:
 *
 * ```
 * deno run -A --config deno.json tests/support/mdns_liar.ts --from ADDR --victim ADDR --instances N [--oversize K]
 * ```
 *
 * Multicasts, from the interface with address `--from`, responses that
 * advertise N `_lanchat._udp` instances (16 a message), every one pointing
 * at `--victim` on a port of its own (40000 + i), then K datagrams over
 * mDNS's 9,000 bytes. Prints one JSON line saying what it sent.
 */
import dgram from "node:dgram";
import dnsPacket from "dns-packet";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    from: { type: "string" },
    victim: { type: "string" },
    instances: { type: "string", default: "100" },
    oversize: { type: "string", default: "0" },
  },
});
const n = Number(values.instances);
const socket = dgram.createSocket({ type: "udp4", reuseAddr: true });
await new Promise<void>((r) => socket.bind(0, "0.0.0.0", () => r()));
socket.setMulticastInterface(values.from!);
const send = (bytes: Uint8Array) =>
  new Promise<void>((r, j) => socket.send(bytes, 5353, "224.0.0.251", (e) => e ? j(e) : r()));
let messages = 0;
for (let first = 0; first < n; first += 16) {
  const answers = [];
  for (let i = first; i < Math.min(n, first + 16); i++) {
    const name = `liar${i}._lanchat._udp.local`;
    answers.push(
      { name: "_lanchat._udp.local", type: "PTR", ttl: 4500, data: name },
      { name, type: "SRV", ttl: 120, data: { target: `liar${i}.local`, port: 40000 + i, priority: 0, weight: 0 } },
      { name: `liar${i}.local`, type: "A", ttl: 120, data: values.victim! },
    );
  }
  await send(dnsPacket.encode({ type: "response", flags: 0x400, answers } as never));
  messages++;
}
for (let i = 0; i < Number(values.oversize); i++) await send(new Uint8Array(9500).fill(7));
socket.close();
console.log(JSON.stringify({ messages, instances: n, oversize: Number(values.oversize) }));
