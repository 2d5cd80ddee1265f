/**
 * Run inside a host's namespace (the daemon's HTTP is on its loopback):
 * posts every message of a JSON file `[{to, text}]` to the daemon in order,
 * then waits until its outbox is empty, and prints a JSON summary.
 *
 *   LANCHAT_HTTP_TOKEN=… deno run --allow-net --allow-read --allow-env=LANCHAT_HTTP_TOKEN \
 *     post_messages.ts http://127.0.0.1:47476 msgs.json [timeoutS]
 *
 * The API is its owner's: the token comes in LANCHAT_HTTP_TOKEN, as the CLI takes it.
 */
const [base, file, timeoutS = "120"] = Deno.args;
if (!base || !file) {
  console.error("usage: post_messages.ts BASE_URL FILE [TIMEOUT_S]");
  Deno.exit(2);
}
const token = Deno.env.get("LANCHAT_HTTP_TOKEN");
const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
const messages = JSON.parse(Deno.readTextFileSync(file)) as { to: string; text: string }[];
const t0 = performance.now();
for (const m of messages) {
  const res = await fetch(`${base}/messages`, { method: "POST", headers, body: JSON.stringify(m) });
  if (res.status !== 202 && res.status !== 200) {
    console.error(`POST /messages answered ${res.status}: ${await res.text()}`);
    Deno.exit(1);
  }
  await res.body?.cancel();
}
const posted = performance.now() - t0;
const deadline = Date.now() + Number(timeoutS) * 1000;
let status: { messaging: { outbox: number; fragmentsSent: number; fragmentsRetransmitted: number } };
while (true) {
  status = await (await fetch(`${base}/status`, { headers })).json();
  if (status.messaging.outbox === 0 || Date.now() > deadline) break;
  await new Promise((r) => setTimeout(r, 100));
}
console.log(JSON.stringify({
  posted: messages.length,
  postMs: Math.round(posted),
  drainedMs: Math.round(performance.now() - t0),
  outbox: status.messaging.outbox,
  fragmentsSent: status.messaging.fragmentsSent,
  fragmentsRetransmitted: status.messaging.fragmentsRetransmitted,
}));
