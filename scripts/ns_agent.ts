/**
 * Runs inside a host's network namespace and carries HTTP requests from a
 * benchmark outside it to the daemon's API on that host's loopback, so the
 * benchmark need not spawn the CLI (a Deno start each) for every request.
 *
 *   LANCHAT_HTTP_TOKEN=… ip netns exec NS deno run --allow-net --allow-env=LANCHAT_HTTP_TOKEN scripts/ns_agent.ts [HOST:PORT]
 *
 * Reads one JSON request a line on stdin, `{id, method, path, body?}`, and
 * writes one JSON answer a line on stdout, `{id, status, body}` (status 0
 * and the error text as body when the daemon could not be reached).
 * Requests are handled concurrently; answers come in the order they finish.
 */
const target = Deno.args[0] ?? "127.0.0.1:47476";
/** The API is its owner's: the token comes as the CLI takes it. */
const token = Deno.env.get("LANCHAT_HTTP_TOKEN");
const encoder = new TextEncoder();
const out = Deno.stdout.writable.getWriter();
let writing = Promise.resolve();
const answer = (o: unknown) => {
  writing = writing.then(() => out.write(encoder.encode(JSON.stringify(o) + "\n")));
};

async function handle(line: string): Promise<void> {
  let id: unknown;
  try {
    const r = JSON.parse(line) as { id: unknown; method?: string; path: string; body?: unknown };
    id = r.id;
    const res = await fetch(`http://${target}${r.path}`, {
      method: r.method ?? "GET",
      headers: token ? { authorization: `Bearer ${token}` } : {},
      body: r.body === undefined ? undefined : JSON.stringify(r.body),
    });
    answer({ id, status: res.status, body: await res.text() });
  } catch (e) {
    answer({ id, status: 0, body: (e as Error).message });
  }
}

let buf = "";
for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
  buf += chunk;
  let i: number;
  while ((i = buf.indexOf("\n")) >= 0) {
    const line = buf.slice(0, i);
    buf = buf.slice(i + 1);
    if (line.trim()) handle(line);
  }
}
await writing;
