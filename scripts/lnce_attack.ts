// Usage: deno run -A scripts/lnce_attack.ts TARGET_PORT NODE_KEY_JSON PCAP MODE
import { headerOf, mac1, staticIdentityOf } from "../src/security/e2e_wire.ts";
import { randomBytes } from "node:crypto";
const [portS, keyFile, pcap, mode] = Deno.args;
const port = Number(portS);
const nk = JSON.parse(Deno.readTextFileSync(keyFile!));
const id = staticIdentityOf(
  new Uint8Array(Buffer.from(nk.privateKey, "base64")),
  new Uint8Array(Buffer.from(nk.publicKey, "base64")),
  () => new Uint8Array(64),
);
const target = { transport: "udp" as const, hostname: "127.0.0.1", port };
const sock = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
const send = (b: Uint8Array) => sock.send(b, target);
const rnd = (n: number) => new Uint8Array(randomBytes(n));
const cat = (...a: Uint8Array[]) => {
  const o = new Uint8Array(a.reduce((s, x) => s + x.length, 0));
  let i = 0;
  for (const x of a) {
    o.set(x, i);
    i += x.length;
  }
  return o;
};
const withMac = (body: Uint8Array) => cat(body, mac1(id.dh.publicKey, body));
if (mode === "junk" || mode === "all") {
  const L = new TextEncoder().encode("LNCE");
  const cases: [string, Uint8Array][] = [
    ["magic only", L],
    ["magic+ver", cat(L, new Uint8Array([1]))],
    ["hdr only t1", headerOf(1)],
    ["hdr only t2", headerOf(2)],
    ["hdr only t3", headerOf(3)],
    ["t1 truncated 100", cat(headerOf(1), rnd(94))],
    ["t1 230 random", cat(headerOf(1), rnd(224))],
    ["t1 230 good mac1 junk", withMac(cat(headerOf(1), rnd(208)))],
    ["t1 231 long", withMac(cat(headerOf(1), rnd(209)))],
    ["t2 78 random", cat(headerOf(2), rnd(72))],
    ["t2 good mac1 junk", withMac(cat(headerOf(2), rnd(56)))],
    ["t3 34 random", cat(headerOf(3), rnd(28))],
    ["t3 33", cat(headerOf(3), rnd(27))],
    ["t3 1400", cat(headerOf(3), rnd(1394))],
    ["t3 index 0", cat(headerOf(3), new Uint8Array(12), rnd(16))],
    ["t3 60000", cat(headerOf(3), rnd(60000))],
    ["version 2", cat(L, new Uint8Array([2, 1]), rnd(224))],
    ["version 0", cat(L, new Uint8Array([0, 3]), rnd(40))],
    ["type 0", cat(L, new Uint8Array([1, 0]), rnd(40))],
    ["type 255", cat(L, new Uint8Array([1, 255]), rnd(40))],
  ];
  for (const [name, b] of cases) {
    try {
      await send(b);
    } catch (e) {
      console.log(name, "send error", (e as Error).message);
    }
  }
  // low-order / zero ephemeral with good mac1
  await send(withMac(cat(headerOf(1), new Uint8Array(32), rnd(176))));
  const lo = new Uint8Array(32);
  lo[0] = 1;
  await send(withMac(cat(headerOf(1), lo, rnd(176))));
  console.log("sent", cases.length + 2, "junk datagrams");
}
if (pcap && (mode === "replay" || mode === "all")) {
  const b = Deno.readFileSync(pcap);
  const dv = new DataView(b.buffer);
  let off = 24, n = 0;
  const link = dv.getUint32(20, true);
  while (off + 16 <= b.length) {
    const incl = dv.getUint32(off + 8, true);
    const pkt = b.subarray(off + 16, off + 16 + incl);
    off += 16 + incl;
    const ipOff = link === 113 ? 16 : link === 1 ? 14 : 0; // SLL, ethernet
    const ihl = (pkt[ipOff]! & 0xf) * 4;
    const payload = pkt.subarray(ipOff + ihl + 8);
    if (payload[0] === 0x4c && payload[3] === 0x45) {
      for (let r = 0; r < 3; r++) await send(payload.slice());
      n++;
    }
  }
  console.log("replayed", n, "captured LNCE datagrams x3");
}
if (mode === "flood") {
  const seconds = Number(Deno.args[4] ?? 3);
  const end = Date.now() + seconds * 1000;
  let n = 0;
  while (Date.now() < end) {
    for (let i = 0; i < Number(Deno.env.get("PER10") ?? 50); i++) {
      await send(withMac(cat(headerOf(1), rnd(32), rnd(176))));
      n++;
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  console.log("flooded", n, "fake initiations with good mac1");
}
sock.close();
