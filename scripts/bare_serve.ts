/**
 * The baseline for the /peers benchmark: a bare Deno.serve that answers
 * every request with the same bytes (a file), with the headers the daemon
 * sends.  deno run --allow-net --allow-read scripts/bare_serve.ts FILE PORT
 */
const [file, port] = Deno.args;
const body = Deno.readFileSync(file!);
Deno.serve(
  { hostname: "127.0.0.1", port: Number(port), onListen: () => console.log("ready") },
  () =>
    new Response(body, {
      headers: { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" },
    }),
);
