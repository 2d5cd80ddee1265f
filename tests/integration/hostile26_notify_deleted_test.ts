/**
 * Hostile test of issue 26's desktop notifications with its deletions (found
 * by an outside tester): notifications are rate-limited (a burst of 3, then
 * one every 4 s), so a message can wait in the queue; the notifier does not
 * hear of edits or deletions, so a message its sender deleted (sent to the
 * wrong person, a password) pops up seconds after the deletion reached this
 * node, and its text stays on the desktop.
 */
import assert from "node:assert/strict";
import { until } from "../support/daemon_process.ts";
import { alicePair, busTest, NOTIFY_SERVER, shown } from "../support/session_bus.ts";
import { NOTIFY_BURST, NOTIFY_EVERY_MS } from "../../src/node/notify_policy.ts";

busTest(
  "a message deleted by its sender before its notification was shown is not shown afterwards",
  async ({ address, run }) => {
    const server = run("/usr/bin/python3", [NOTIFY_SERVER, "body"]);
    await server.waitFor((l) => l === "ready", "the notification server");
    const { alice, bob } = await alicePair(address);
    const send = async (text: string) => {
      const r = await fetch(`${bob.httpUrl}/messages?wait=5`, {
        method: "POST",
        body: JSON.stringify({ to: alice.id, text }),
      });
      const m = await r.json();
      assert.equal(m.status, "delivered", JSON.stringify(m));
      return m as { id: string };
    };
    // Use up the burst: each shown at once.
    for (let i = 1; i <= NOTIFY_BURST; i++) {
      await send(`hello ${i}`);
      await until(`notification ${i}`, () => Promise.resolve(shown(server).length >= i), 10_000);
    }
    // The next waits for the rate; its sender takes it back at once.
    const secret = await send("the door code is 4711");
    const del = await fetch(`${bob.httpUrl}/messages/${secret.id}/delete`, { method: "POST", body: "{}" });
    assert.equal(del.status, 200);
    await until("the deletion at alice", async () => {
      const h = await (await fetch(`${alice.httpUrl}/messages?peer=${bob.id}`)).json() as { deletedAt?: number }[];
      return h.some((m) => m.deletedAt);
    }, 10_000);
    const after = shown(server).length;
    await new Promise((r) => setTimeout(r, 2 * NOTIFY_EVERY_MS + 1000));
    const later = shown(server).slice(after);
    assert.ok(
      !later.some((n) => n.body.includes("4711")),
      `shown after its deletion: ${JSON.stringify(later.map((n) => n.body))}`,
    );
  },
);

busTest(
  "a notification on screen whose newest message is deleted is replaced without its text, then closed when none is left",
  async ({ address, run }) => {
    const server = run("/usr/bin/python3", [NOTIFY_SERVER, "body"]);
    await server.waitFor((l) => l === "ready", "the notification server");
    const { alice, bob } = await alicePair(address);
    const post = async (path: string, body: unknown) => {
      const r = await fetch(`${bob.httpUrl}${path}`, { method: "POST", body: JSON.stringify(body) });
      assert.ok(r.ok, await r.clone().text());
      return await r.json() as { id: string };
    };
    // Three at once: shown one by one or coalesced ("2 new: …"), whichever the rate makes of them.
    const sent = [];
    for (const text of ["one", "two", "the door code is 4711"]) {
      sent.push(await post("/messages", { to: alice.id, text }));
    }
    const secret = await server.waitFor((l) => l.includes("4711"), "the secret's notification");
    const { id } = JSON.parse(secret) as { id: number };
    const after = server.lines.length;
    // Its sender takes it back: the notification on screen loses the text at once (same id), or closes.
    await post(`/messages/${sent[2]!.id}/delete`, {});
    const fixed = await server.waitFor(
      (l) => server.lines.indexOf(l) >= after && (l === `closed ${id}` || l.startsWith("{")),
      "the notification corrected",
    );
    console.log(`the secret's notification (${JSON.parse(secret).body}) after its deletion: ${fixed}`);
    if (fixed.startsWith("{")) {
      const n = JSON.parse(fixed) as { replaces: number; body: string };
      assert.equal(n.replaces, id, "replaced, not a new one");
      assert.ok(!n.body.includes("4711"), n.body);
      // The rest deleted too: nothing is left to show, it closes.
      await post(`/messages/${sent[1]!.id}/delete`, {});
      await post(`/messages/${sent[0]!.id}/delete`, {});
      await server.waitFor((l) => l === `closed ${id}`, "the notification closed");
    }
    await new Promise((r) => setTimeout(r, NOTIFY_EVERY_MS + 1000));
    const later = shown(server).filter((n) => server.lines.indexOf(JSON.stringify(n)) >= after);
    assert.ok(!later.some((n) => n.body.includes("4711")), JSON.stringify(later));
    const st = (await (await fetch(`${alice.httpUrl}/status`)).json()).notifications;
    assert.ok(st.amended >= 1 && st.closed === 1 && st.failed === 0, JSON.stringify(st));
  },
);
