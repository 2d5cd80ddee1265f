/**
 * Raw Deno UDP baseline for the messaging benchmark: the same loop the
 * daemon uses (one reused buffer), nothing else.
 *
 *   deno run --allow-net scripts/udp_baseline.ts recv PORT COUNT
 *   deno run --allow-net scripts/udp_baseline.ts send PORT COUNT SIZE
 *
 * recv prints one JSON line: datagrams received and the rate between the
 * first and the last (it stops at COUNT or after 1 s of silence).
 */
const [mode, portS, countS, sizeS] = Deno.args;
const port = Number(portS);
const count = Number(countS);
if (mode === "recv") {
  const conn = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port });
  const buf = new Uint8Array(65_536);
  let got = 0;
  let first = 0;
  let last = 0;
  let idle: ReturnType<typeof setTimeout> | undefined;
  console.log(JSON.stringify({ ready: true }));
  const done = () => {
    console.log(JSON.stringify({ received: got, perSecond: Math.round(got / ((last - first) / 1000 || 1)) }));
    Deno.exit(0);
  };
  while (true) {
    await conn.receive(buf);
    const now = performance.now();
    if (got === 0) first = now;
    last = now;
    got++;
    clearTimeout(idle);
    if (got >= count) done();
    idle = setTimeout(done, 1000);
  }
} else if (mode === "send") {
  const conn = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const payload = new Uint8Array(Number(sizeS)).fill(120);
  const to: Deno.NetAddr = { transport: "udp", hostname: "127.0.0.1", port };
  for (let i = 0; i < count; i++) await conn.send(payload, to);
  conn.close();
} else {
  console.error("usage: udp_baseline.ts recv PORT COUNT | send PORT COUNT SIZE");
  Deno.exit(2);
}
