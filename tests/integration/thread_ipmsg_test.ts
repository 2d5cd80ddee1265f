/**
 * Replies, edits and deletions with an IP Messenger user (a crafted
 * iptux-like client on loopback): it has none of them, so an edit comes to
 * it as a new plain message, `(edited) …`, and a deletion as one short line
 * saying which message (by when it was sent), while lanchat's own history
 * shows the one message, edited, then deleted.
 */
import assert from "node:assert/strict";
import type { MessageJson, PeerJson } from "../../src/api/types.ts";
import { IPMSG } from "../../src/wire/ipmsg.ts";
import { freeUdpPort, killAll, startLoopbackDaemon } from "../support/daemon_process.ts";
import { craftedClient } from "../support/ipmsg_client.ts";

async function until<T>(what: string, f: () => Promise<T | undefined> | T | undefined, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`Not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

Deno.test("an IP Messenger user gets an edit as a new plain message and a deletion as a short line", async () => {
  const port = freeUdpPort();
  const ipmsgPort = freeUdpPort();
  const client = craftedClient(ipmsgPort);
  try {
    const d = await startLoopbackDaemon(port, "alice", { extra: ["--ipmsg", "--ipmsg-port", String(ipmsgPort)] })
      .started();
    await client.entry(1);
    const peer = await until("the user is listed", async () => {
      const peers: PeerJson[] = await (await fetch(`${d.httpUrl}/peers`)).json();
      return peers.find((p) => p.protocol === "ipmsg");
    });
    const post = async (path: string, body?: unknown) => {
      const res = await fetch(`${d.httpUrl}${path}`, {
        method: "POST",
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return { status: res.status, body: await res.json() };
    };
    const texts = () => [...new Map(
      client.got.filter((p) => p.mode === IPMSG.SENDMSG).map((p) => [p.packetNo, p.extra[0]!]),
    ).values()];
    const sent = await post("/messages", { to: peer.id, text: "meet at 3" });
    assert.equal(sent.status, 202, JSON.stringify(sent.body));
    await until("it got the message", () => texts().length === 1);
    const edited = await post(`/messages/${sent.body.id}/edit`, { text: "meet at 4" });
    assert.equal(edited.status, 200, JSON.stringify(edited.body));
    await until("it got the edit", () => texts().length === 2);
    assert.equal(texts()[1], "(edited) meet at 4");
    const deleted = await post(`/messages/${sent.body.id}/delete`);
    assert.equal(deleted.status, 200, JSON.stringify(deleted.body));
    await until("it got the deletion's line", () => texts().length === 3);
    assert.match(texts()[2]!, /^\(deleted the message sent \d{4}-\d\d-\d\d \d\d:\d\d\)$/);
    // lanchat's history has the one message, deleted (the edit and the deletion are not messages of their own).
    const history: MessageJson[] = await (await fetch(`${d.httpUrl}/messages?peer=${peer.id}`)).json();
    assert.deepEqual(history.map((m) => [m.id, m.text, m.deletedAt !== undefined]), [[sent.body.id, "", true]]);
  } finally {
    client.sock.close();
    await killAll();
  }
});
