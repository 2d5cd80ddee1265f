/**
 * Replies, edits and deletions through the HTTP API of daemons on a fake
 * network: the contract (`replyTo`, `quote`, `editedAt`, `deletedAt`,
 * `POST /messages/:id/edit|delete`, `message-updated` events), who may
 * change what (404, 403, 409, 400), group messages edited at every member,
 * and what the event stream leaves out.
 */
import assert from "node:assert/strict";
import { createHandler } from "../../src/api/http.ts";
import { sseEvent } from "../../src/api/routes/events.ts";
import type { MessageJson } from "../../src/api/types.ts";
import { Daemon, type DaemonEvent } from "../../src/node/daemon.ts";
import { FakeNetwork } from "../../src/node/transport.ts";
import { fakeHost } from "../support/fake_host.ts";

async function until<T>(what: string, f: () => T | undefined | false, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`Not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface Node {
  d: Daemon;
  id: string;
  // deno-lint-ignore no-explicit-any
  call: (method: string, path: string, body?: unknown) => Promise<{ status: number; body: any }>;
  events: DaemonEvent[];
}

async function nodes(): Promise<[Node, Node, Node]> {
  const n = 3;
  const net = new FakeNetwork();
  const opts = { http: null, intervalMs: 200, discoveryPort: 47474, unicastPort: 47475 } as const;
  const out: Node[] = [];
  for (let i = 1; i <= n; i++) {
    const d = await Daemon.start({ ...opts, dataDir: Deno.makeTempDirSync() }, fakeHost(net, `198.18.0.${i}`));
    const handler = createHandler(d.api());
    const events: DaemonEvent[] = [];
    d.onEvent((e) => events.push(e));
    const call = async (method: string, path: string, body?: unknown) => {
      const res = await handler(
        new Request(`http://127.0.0.1${path}`, {
          method,
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        }),
      );
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : undefined };
    };
    out.push({ d, id: d.discovery.self.id, call, events });
  }
  await until("every node sees every other", () => out.every((x) => x.d.discovery.roster.size === n - 1));
  return [out[0]!, out[1]!, out[2]!];
}

const history = async (n: Node, q: string) => (await n.call("GET", `/messages?${q}`)).body as MessageJson[];

Deno.test("thread api: reply with a quote, edit and delete reach the peer; the rules say who may change what", async () => {
  const [a, b, c] = await nodes();
  try {
    const first = await a.call("POST", "/messages", { to: b.id, text: "lunch at noon?" });
    assert.equal(first.status, 202);
    const firstId = first.body.id as string;
    await until("b has the first message", () => b.d.parts.conversations.history({ limit: 10 }).length === 1);
    // b answers it.
    const reply = await b.call("POST", "/messages", { to: a.id, text: "yes", replyTo: firstId });
    assert.equal(reply.status, 202, JSON.stringify(reply.body));
    assert.equal(reply.body.replyTo, firstId);
    assert.deepEqual(reply.body.quote, { id: firstId, text: "lunch at noon?", direction: "in" });
    await until("a has the reply", () => a.d.parts.conversations.history({ peer: b.id, limit: 10 }).length === 2);
    const atA = (await history(a, `peer=${b.id}`)).at(-1)!;
    assert.deepEqual(atA.quote, { id: firstId, text: "lunch at noon?", direction: "out" });

    // Edges first: a reply to a message of another conversation, an unknown id, someone else's message.
    const toC = await a.call("POST", "/messages", { to: c.id, text: "for c" });
    const wrong = await a.call("POST", "/messages", { to: b.id, text: "x", replyTo: toC.body.id });
    assert.equal(wrong.status, 400);
    assert.match(wrong.body.error, /replyTo/);
    assert.equal((await a.call("POST", `/messages/${"f".repeat(32)}/edit`, { text: "x" })).status, 404);
    assert.equal((await a.call("POST", `/messages/${reply.body.id}/edit`, { text: "no" })).status, 403);
    assert.equal((await b.call("POST", `/messages/${firstId}/delete`)).status, 403);
    assert.equal((await a.call("POST", `/messages/${firstId}/edit`, { text: "" })).status, 400);
    assert.equal(
      (await a.call("POST", `/messages/${firstId}/edit`, { text: "\u0001lanchat-files {}" })).status,
      400,
    );

    // a edits its message: here at once, at b by message-updated.
    const edited = await a.call("POST", `/messages/${firstId}/edit`, { text: "lunch at one?" });
    assert.equal(edited.status, 200, JSON.stringify(edited.body));
    assert.equal(edited.body.text, "lunch at one?");
    assert.equal(typeof edited.body.editedAt, "number");
    const updated = await until(
      "b gets message-updated",
      () => b.events.find((e) => e.type === "message-updated" && e.message.id === firstId),
    );
    assert.ok(updated.type === "message-updated");
    const sse = sseEvent(b.d.api(), updated)!;
    assert.equal(sse[0], "message-updated");
    assert.equal((sse[1] as { type: string; message: MessageJson }).message.text, "lunch at one?");
    const atB = await history(b, `peer=${a.id}`);
    assert.deepEqual(atB.map((m) => [m.text, m.editedAt !== undefined]), [["lunch at one?", true], ["yes", false]]);
    assert.equal(atB[1]!.quote?.text, "lunch at one?", "the quote is resolved when read: it shows the edit");
    // The edit is not a message of its own anywhere: not in history, not as an SSE message.
    assert.equal((await history(a, `peer=${b.id}`)).length, 2);
    for (const e of a.events) {
      if ("message" in e && e.message.ref?.kind === "edit") assert.equal(sseEvent(a.d.api(), e), undefined);
    }
    assert.equal(b.events.filter((e) => e.type === "message").length, 1, "b got one message (its own reply aside)");

    const found = await b.call("GET", "/messages/search?q=lunch");
    assert.deepEqual(found.body.messages.map((m: MessageJson) => m.text), ["lunch at one?"], "search finds the edit");
    assert.equal((await b.call("GET", "/messages/search?q=noon")).body.messages.length, 0, "not the old text");
    // a deletes it: text gone both sides, the quote says deleted; a second delete or an edit is 409.
    const deleted = await a.call("POST", `/messages/${firstId}/delete`);
    assert.equal(deleted.status, 200);
    assert.deepEqual([deleted.body.text, typeof deleted.body.deletedAt], ["", "number"]);
    await until("b sees the deletion", () => b.d.parts.conversations.history({ limit: 10 })[0]!.deletedAt);
    const afterDelete = await history(b, `peer=${a.id}`);
    assert.deepEqual(afterDelete[0]!.text, "");
    assert.deepEqual(afterDelete[1]!.quote, { id: firstId, text: "", direction: "in", deleted: true });
    assert.equal((await a.call("POST", `/messages/${firstId}/delete`)).status, 409);
    assert.equal((await a.call("POST", `/messages/${firstId}/edit`, { text: "back" })).status, 409);
    const search = await b.call("GET", "/messages/search?q=lunch");
    assert.deepEqual(search.body.messages, [], "deleted text is not found");
  } finally {
    for (const n of [a, b, c]) await n.d.stop();
  }
});

Deno.test("thread api: a group message edited and deleted at every member; a member's reply quotes it at every member", async () => {
  const [a, b, c] = await nodes();
  try {
    const made = await a.call("POST", "/groups", { name: "team", members: [b.id, c.id] });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    const g = made.body.group.id as string;
    const sent = await a.call("POST", "/messages", { group: g, text: "standup at 10" });
    assert.equal(sent.status, 202, JSON.stringify(sent.body));
    const at = (n: Node) => () => n.d.parts.conversations.history({ group: g, limit: 10 });
    for (const n of [b, c]) await until("the member has it", () => at(n)().some((m) => m.text.startsWith("standup")));
    const edited = await a.call("POST", `/messages/${sent.body.id}/edit`, { text: "standup at 11" });
    assert.equal(edited.status, 200, JSON.stringify(edited.body));
    assert.equal(edited.body.text, "standup at 11");
    assert.equal(edited.body.group.id, g);
    for (const n of [b, c]) {
      await until("the member sees the edit", () => at(n)().some((m) => m.editedAt !== undefined));
      const shown = (await history(n, `group=${g}`)).filter((m) => !m.group?.change);
      assert.deepEqual(shown.map((m) => [m.text, m.group?.id]), [["standup at 11", g]]);
    }
    // b answers in the group: a (whose message it is) sees the quote.
    const bCopy = at(b)().find((m) => m.text.startsWith("standup"))!;
    const reply = await b.call("POST", "/messages", { group: g, text: "ok", replyTo: bCopy.id });
    assert.equal(reply.status, 202, JSON.stringify(reply.body));
    await until("a has b's reply", () => at(a)().some((m) => m.text.startsWith("ok")));
    const atA = (await history(a, `group=${g}`)).find((m) => m.text === "ok")!;
    assert.deepEqual(atA.quote, { id: sent.body.id, text: "standup at 11", direction: "out" });
    // And c, a third member, whose copy of a's message has another id: the reply names the message as written
    // to the group, which c's copy knows.
    await until("c has b's reply", () => at(c)().some((m) => m.text.startsWith("ok")));
    const cCopy = at(c)().find((m) => m.text.startsWith("standup"))!;
    assert.notEqual(cCopy.id, bCopy.id);
    const atC = (await history(c, `group=${g}`)).find((m) => m.text === "ok")!;
    assert.deepEqual(atC.quote, { id: cCopy.id, text: "standup at 11", direction: "in" });
    // Deleted: gone at every member.
    assert.equal((await a.call("POST", `/messages/${sent.body.id}/delete`)).status, 200);
    for (const n of [b, c]) await until("the member sees the deletion", () => at(n)().some((m) => m.deletedAt));
    // A member cannot change the author's message through its copy.
    assert.equal((await b.call("POST", `/messages/${bCopy.id}/delete`)).status, 403);
  } finally {
    for (const n of [a, b, c]) await n.d.stop();
  }
});

Deno.test("thread api: a reply naming an unknown message or one of another conversation shows no quote; a 64 KiB edit arrives whole", async () => {
  const [a, b, c] = await nodes();
  try {
    // b and c talk; a (hostile, or just confused) answers, to b, a message of b and c's conversation, and one
    // that does not exist.
    const private_ = await b.call("POST", "/messages", { to: c.id, text: "between b and c" });
    const conv = a.d.parts.conversations;
    const forged = await conv.sendMessage(b.id, "as if answering", { kind: "reply", id: private_.body.id });
    const nowhere = await conv.sendMessage(b.id, "answering nothing", { kind: "reply", id: "e".repeat(32) });
    await until("b has both", () => b.d.parts.conversations.history({ peer: a.id, limit: 10 }).length === 2);
    const atB = await history(b, `peer=${a.id}`);
    assert.deepEqual(atB.map((m) => [m.id, m.replyTo, m.quote]), [
      [forged.id, private_.body.id, undefined],
      [nowhere.id, "e".repeat(32), undefined],
    ]);
    // The largest text there is, edited (too long for the "(edited) " prefix: it goes without), end to end.
    const first = await a.call("POST", "/messages", { to: b.id, text: "short" });
    const big = "é".repeat(32_768);
    const edited = await a.call("POST", `/messages/${first.body.id}/edit`, { text: big });
    assert.equal(edited.status, 200, JSON.stringify(edited.body).slice(0, 200));
    await until(
      "b has the long edit",
      () => b.d.parts.conversations.history({ peer: a.id, limit: 10 }).at(-1)?.text === big,
    );
    await until("everything acknowledged", () => a.d.parts.messaging.messaging.pendingCount() === 0);
    const shown = (await history(b, `peer=${a.id}`)).at(-1)!;
    assert.equal(shown.encrypted, true, "it went end to end");
  } finally {
    for (const n of [a, b, c]) await n.d.stop();
  }
});

Deno.test("thread api: a message the peer refused (failed) cannot be edited or deleted: 403 says to send a new one", async () => {
  const [a, b, c] = await nodes();
  try {
    // b goes away first, so that its own ack cannot come before the refusal made below.
    const incarnation = b.d.discovery.self.incarnation;
    await b.d.stop();
    await until("a knows b left", () => a.d.discovery.roster.size === 1);
    const sent = await a.call("POST", "/messages", { to: b.id, text: "x" });
    assert.equal(sent.body.status, "queued");
    // b refuses it for good (as for a text that is not UTF-8): the ack says so.
    const m = a.d.parts.messaging.messaging;
    m.handlePacket(
      {
        kind: "ack",
        id: b.id,
        incarnation,
        messageId: sent.body.id,
        count: 1,
        received: new Uint8Array(1),
        done: true,
        rejected: "bad-utf8",
      },
      { address: "198.18.0.2", port: 47475 },
      0,
    );
    await until("it failed", () => a.d.parts.conversations.history({ peer: b.id, limit: 5 })[0]?.status === "failed");
    for (
      const [path, body] of [[`/messages/${sent.body.id}/edit`, { text: "y" }], [`/messages/${sent.body.id}/delete`]]
    ) {
      const r = await a.call("POST", path as string, body);
      assert.equal(r.status, 403);
      assert.match(r.body.error, /never reached anyone \(failed\): send a new one instead/);
    }
  } finally {
    for (const n of [a, b, c]) await n.d.stop();
  }
});
