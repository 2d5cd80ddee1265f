/**
 * Hostile tests of issue 26's search (found by an outside tester): a query
 * with a NUL character. SQLite's LIKE stops reading its pattern at a NUL,
 * so `%\0%` is `%`: every message matches, deleted ones (text "") and
 * group lines included, and `alpha\0zzz` finds what ends in `alpha`.
 */
import assert from "node:assert/strict";
import { freeUdpPort, killAll, startLoopbackDaemon } from "../support/daemon_process.ts";

async function search(url: string, q: string): Promise<string[]> {
  const r = await fetch(`${url}/messages/search?q=${encodeURIComponent(q)}`);
  const body = await r.json();
  assert.equal(r.status, 200, JSON.stringify(body));
  return (body.messages as { text: string }[]).map((m) => m.text);
}

Deno.test("a search for a text with a NUL in it finds only messages that contain that text, not every message", async () => {
  try {
    const port = freeUdpPort();
    const a = await startLoopbackDaemon(port, "alice").started();
    const b = await startLoopbackDaemon(port, "bob").started();
    await a.joined(b.id, 8000);
    await b.joined(a.id, 8000);
    const send = async (text: string) => {
      const r = await fetch(`${a.httpUrl}/messages?wait=10`, {
        method: "POST",
        body: JSON.stringify({ to: b.id, text }),
      });
      const m = await r.json();
      assert.equal(m.status, "delivered", JSON.stringify(m));
      return m as { id: string };
    };
    await send("lunch at noon, alpha");
    const gone = await send("this one is deleted");
    assert.equal((await fetch(`${a.httpUrl}/messages/${gone.id}/delete`, { method: "POST", body: "{}" })).status, 200);

    // No message contains a NUL (the API would not even store one in a text): nothing may match.
    assert.deepEqual(await search(a.httpUrl, "\u0000"), [], "a lone NUL matched messages (deleted ones too)");
    assert.deepEqual(await search(a.httpUrl, "x\u0000y"), []);
    // Three characters or more (the trigram path): "alpha\0zzz" is not in "lunch at noon, alpha".
    assert.deepEqual(await search(a.httpUrl, "alpha\u0000zzz"), []);
  } finally {
    await killAll();
  }
});
