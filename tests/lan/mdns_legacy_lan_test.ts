/**
 * One-shot (legacy unicast) mDNS queries (hostile 3 finding 4): a query from
 * a port other than 5353 is answered to its source only when that source is
 * on the receiving interface's subnet (RFC 6762 §11), at most once a second
 * per destination, so a spoofed query cannot aim a stream of responses at a
 * victim. Two /25s behind a router (tests/support/routed_lan.ts). Needs root.
 */
import assert from "node:assert/strict";
import { lanUnavailable } from "../../scripts/lan.ts";
import { DaemonProcess, killAll, tempDataDir } from "../support/daemon_process.ts";
import { createRoutedLan, type RoutedHost } from "../support/routed_lan.ts";

const unavailable = await lanUnavailable();

/** Sends `n` one-shot PTR queries for _lanchat._udp.local to `target`:5353 from `ns`, 100 a second; the answers. */
async function query(ns: string, target: string, n: number): Promise<number> {
  const py = `
import socket, struct, sys, time
name = b"".join(bytes([len(p)]) + p for p in [b"_lanchat", b"_udp", b"local"]) + b"\\0"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 12345)); s.setblocking(False)
got = 0
def drain():
    global got
    while True:
        try: s.recv(65535); got += 1
        except BlockingIOError: return
for i in range(${n}):
    s.sendto(struct.pack("!HHHHHH", i, 0, 1, 0, 0, 0) + name + struct.pack("!HH", 12, 1), ("${target}", 5353))
    drain(); time.sleep(0.01)
end = time.time() + 1.5
while time.time() < end: drain(); time.sleep(0.01)
print(got)`;
  const out = await new Deno.Command("ip", { args: ["netns", "exec", ns, "python3", "-c", py], stdout: "piped" })
    .output();
  return Number(new TextDecoder().decode(out.stdout).trim());
}

Deno.test({
  name: "a one-shot mDNS query is answered on the link at most once a second per source, never to another subnet",
  ignore: unavailable !== undefined,
  sanitizeResources: false,
  fn: async () => {
    const lan = await createRoutedLan(2, "mlq");
    try {
      const [a1, a2, b1] = lan.hosts as [RoutedHost, RoutedHost, RoutedHost];
      await new DaemonProcess(["--name", "node", "--data-dir", tempDataDir(), "--interval", "1s"], { netns: a1.ns })
        .started();
      // On the link: answered (once the mDNS socket is up), but 30 queries in 0.3 s get one or two answers.
      let first = 0;
      for (let i = 0; i < 20 && first === 0; i++) first = await query(a2.ns, a1.address, 1);
      assert.equal(first, 1, "an on-link one-shot query is answered");
      await new Promise((r) => setTimeout(r, 1100));
      const burst = await query(a2.ns, a1.address, 30);
      console.log(`on-link: 30 one-shot queries, ${burst} answers`);
      assert.ok(burst >= 1 && burst <= 3, `${burst} answers to 30 queries within 2 s`);
      // From another subnet (routed): never answered.
      const off = await query(b1.ns, a1.address, 30);
      assert.equal(off, 0, "a one-shot query from another subnet is not answered");
    } finally {
      await killAll();
      await lan.destroy();
    }
  },
});
