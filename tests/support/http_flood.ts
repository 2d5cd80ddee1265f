/**
 * Opens N idle TCP connections to HOST:PORT and holds them: prints one JSON
 * line `{"opened": n, "failed": n}` once they are open, then closes them all
 * when its standard input ends. Run under `prlimit --nofile=…` so that this
 * process, not the daemon, has the file descriptors to spare.
 *
 *   deno run --allow-net tests/support/http_flood.ts 127.0.0.1 47476 5000
 */
const [host, port, count] = Deno.args;
const conns: Deno.Conn[] = [];
let failed = 0;
for (let i = 0; i < Number(count); i++) {
  try {
    conns.push(await Deno.connect({ hostname: host!, port: Number(port) }));
  } catch {
    failed++;
  }
}
console.log(JSON.stringify({ opened: conns.length, failed }));
for await (const _ of Deno.stdin.readable) { /* held until stdin ends */ }
for (const c of conns) {
  try {
    c.close();
  } catch { /* closed by the daemon */ }
}
