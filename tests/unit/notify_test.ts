/**
 * Desktop notifications without I/O: hostile text made safe for a
 * notification (markup, entities, control and bidi characters, length),
 * the rate limit and coalescing of a flood, the gdbus argument quoting,
 * and the service's rules (no page open, not busy, gdbus missing, a bus
 * that fails) over a fake bus.
 */
import assert from "node:assert/strict";
import {
  BODY_CHARS,
  cut,
  MAX_KEPT,
  MAX_WAITING,
  notificationBody,
  notificationTitle,
  NOTIFY_BURST,
  NOTIFY_EVERY_MS,
  NotifyQueue,
  shownText,
} from "../../src/node/notify_policy.ts";
import { BusUnavailable, closeArgs, type DesktopBus, gvariantString, notifyArgs } from "../../src/node/desktop_bus.ts";
import { NotifyService } from "../../src/node/services/notify.ts";
import type { MessageJson } from "../../src/api/types.ts";
import type { StoredMessage } from "../../src/storage/stored_message.ts";
import type { ServiceContext } from "../../src/node/service.ts";

const one = (text: string) => ({ key: "k", title: "t", text, count: 1 });

Deno.test("a notification body shows markup and entities as typed where the server reads markup, and as is where not", () => {
  const text = `<b>bold</b> &amp; <a href="http://x">x</a> <img src="file:///etc/passwd">`;
  assert.equal(
    notificationBody(one(text), true),
    `&lt;b&gt;bold&lt;/b&gt; &amp;amp; &lt;a href="http://x"&gt;x&lt;/a&gt; &lt;img src="file:///etc/passwd"&gt;`,
  );
  assert.equal(notificationBody(one(text), false), text);
});

Deno.test("control and reordering characters in a notification are shown, not obeyed; whitespace folds to one line", () => {
  assert.equal(notificationBody(one("invoice_\u202Efdp.exe"), false), "invoice_<U+202E>fdp.exe");
  assert.equal(notificationBody(one("a\u0007b\u001b[2Jc\u0000d"), false), "a^Gb^[[2Jc^@d");
  assert.equal(notificationBody(one("  line one\n\n\tline two\r\n\u2028three  "), false), "line one line two three");
  assert.equal(notificationBody(one("bob\u200B \u2066x\u2069 \uFEFF"), false), "bob<U+200B> <U+2066>x<U+2069>");
  assert.equal(notificationTitle("ev\u202Eil\nname\u001b]0;x\u0007"), "ev<U+202E>il name^[]0;x^G");
  assert.equal(notificationTitle("   "), "lanchat");
});

Deno.test("a long text is cut to whole characters with an ellipsis, without segmenting all of it", () => {
  const long = "x".repeat(65_536);
  const body = notificationBody(one(long), false);
  assert.equal(body.length, BODY_CHARS);
  assert.ok(body.endsWith("…"));
  // Emoji (surrogate pairs, ZWJ sequences) and accents are never split.
  const family = "👨‍👩‍👧‍👦";
  const cutFamily = cut(family.repeat(300), 5);
  assert.equal(cutFamily, family.repeat(4) + "…");
  assert.equal(cut("e\u0301".repeat(10), 3), "e\u0301e\u0301…");
  assert.equal(cut("short", 10), "short");
  // Markup escaping comes after the cut: an entity is never cut in half.
  const amp = notificationBody(one("&".repeat(1000)), true);
  assert.match(amp, /^(&amp;)+…$/);
});

Deno.test("gdbus arguments are typed GVariant literals: quotes, backslashes and option-like text stay text", () => {
  assert.equal(gvariantString(`a"b\\n'c`), `"a\\"b\\\\n'c"`);
  assert.equal(gvariantString("x\ny\u0000\u007f"), `"x\\u000ay\\u0000\\u007f"`);
  assert.equal(gvariantString("a\uD800b\uDFFF"), `"a\uFFFDb\uFFFD"`, "lone surrogates: not valid UTF-8 on the bus");
  const args = notifyArgs({ replacesId: 7, summary: "--help", body: "-x" });
  const values = args.slice(args.indexOf("org.freedesktop.Notifications.Notify") + 1);
  assert.deepEqual(values.slice(0, 5), [`"lanchat"`, "@u 7", `"mail-message-new"`, `"--help"`, `"-x"`]);
  for (const v of values) assert.match(v, /^["@]/, "nothing gdbus could take for an option");
  assert.ok(notifyArgs({ replacesId: -5, summary: "", body: "" }).includes("@u 0"));
  assert.deepEqual(closeArgs(42).slice(-2), ["org.freedesktop.Notifications.CloseNotification", "@u 42"]);
});

Deno.test("a flood is a burst, then one notification every few seconds, one per conversation with its count", () => {
  const q = new NotifyQueue(0);
  for (let i = 0; i < 1000; i++) q.push("alice", "alice", `message ${i}`);
  q.push("bob", "bob", "hi");
  assert.equal(q.size, 2, "coalesced per conversation");
  const a = q.take(0)!;
  assert.deepEqual([a.key, a.count, a.text], ["alice", 1000, "message 999"]);
  assert.equal(notificationBody(a, false), "1000 new: message 999");
  assert.equal(q.take(0)!.key, "bob");
  assert.equal(q.take(0), undefined, "nothing waits");
  for (let i = 0; i < NOTIFY_BURST + 5; i++) q.push(`p${i}`, "p", "x");
  let shown = 0;
  while (q.take(0)) shown++;
  assert.equal(shown, NOTIFY_BURST - 2, "the rest of the burst");
  assert.equal(q.nextDeadline(), NOTIFY_EVERY_MS);
  assert.equal(q.take(NOTIFY_EVERY_MS - 1), undefined);
  assert.ok(q.take(NOTIFY_EVERY_MS));
  assert.equal(q.take(NOTIFY_EVERY_MS), undefined);
  // A long quiet refills the burst, not more.
  let later = 0;
  while (q.take(1_000_000)) later++;
  assert.equal(later, NOTIFY_BURST);
});

Deno.test("conversations waiting are bounded: the oldest is dropped and counted", () => {
  const q = new NotifyQueue(0, 0);
  for (let i = 0; i < MAX_WAITING + 10; i++) q.push(`p${i}`, "p", "x");
  assert.equal(q.size, MAX_WAITING);
  assert.equal(q.dropped, 10);
});

Deno.test("a deleted message leaves what waits: the count drops, the text is the one before, nothing left is nothing shown", () => {
  const q = new NotifyQueue(0); // nothing is taken before take: all of it waits
  q.push("bob", "bob", "one", "m1");
  q.push("bob", "bob", "two", "m2");
  q.push("bob", "bob", "the door code is 4711", "m3");
  q.push("carol", "carol", "hi", "c1");
  q.amend("bob", "m3", undefined);
  q.amend("bob", "m9", undefined); // not one of its messages: nothing changes
  q.amend("carol", "m1", undefined); // another conversation's id: nothing changes
  assert.equal(q.amended, 1);
  const bob = q.take(NOTIFY_EVERY_MS)!;
  assert.deepEqual([bob.key, bob.count, bob.text, bob.replacesId], ["bob", 2, "two", 0]);
  assert.equal(notificationBody(bob, false), "2 new: two");
  // Edited while waiting: the new text, the same count.
  q.amend("carol", "c1", "hello\n<b>there</b>");
  const carol = q.take(2 * NOTIFY_EVERY_MS)!;
  assert.deepEqual([carol.count, notificationBody(carol, true)], [1, "hello &lt;b&gt;there&lt;/b&gt;"]);
  // The only message waiting, deleted: nothing is shown, ever.
  q.push("dave", "dave", "oops", "d1");
  q.amend("dave", "d1", undefined);
  assert.equal(q.size, 0);
  assert.equal(q.nextDeadline(), undefined);
  assert.equal(q.take(1_000_000), undefined);
  // An older one deleted: the newest text stays, the count drops.
  q.push("erin", "erin", "a", "e1");
  q.push("erin", "erin", "b", "e2");
  q.push("erin", "erin", "c", "e3");
  q.amend("erin", "e1", undefined);
  assert.equal(notificationBody(q.take(2_000_000)!, false), "2 new: c");
});

Deno.test("a shown notification whose newest message is deleted is replaced without it, or closed; an edit re-words it", () => {
  const q = new NotifyQueue(0, 1, NOTIFY_EVERY_MS);
  q.push("bob", "bob", "one", "m1");
  q.push("bob", "bob", "two", "m2");
  q.push("bob", "bob", "the door code is 4711", "m3");
  const first = q.take(0)!;
  assert.equal(notificationBody(first, false), "3 new: the door code is 4711");
  q.shownAs("bob", 17);
  // An older one deleted: the count on screen is off by one, but no pop-up for it.
  q.amend("bob", "m1", undefined);
  assert.equal(q.nextDeadline(), undefined);
  // The newest deleted: replaced at once (no token left: a deletion does not wait for the rate).
  q.amend("bob", "m3", undefined);
  assert.equal(q.nextDeadline(), 0, "due now");
  const fixed = q.take(1)!;
  assert.deepEqual([fixed.replacesId, fixed.count, fixed.text], [17, 1, "two"]);
  assert.equal(notificationBody(fixed, false), "two");
  assert.equal(q.take(1), undefined);
  // Edited: re-worded in place, as the rate allows (a peer editing in a loop is no storm).
  q.amend("bob", "m2", "2");
  assert.equal(q.take(1), undefined, "no token yet");
  assert.equal(q.nextDeadline(), NOTIFY_EVERY_MS);
  const edited = q.take(NOTIFY_EVERY_MS)!;
  assert.deepEqual([edited.replacesId, edited.count, edited.text], [17, 1, "2"]);
  // The last one deleted: nothing left, closed.
  q.amend("bob", "m2", undefined);
  const closed = q.take(NOTIFY_EVERY_MS)!;
  assert.deepEqual([closed.replacesId, closed.count], [17, 0]);
  assert.equal(q.take(10 * NOTIFY_EVERY_MS), undefined);
  // After closing, bob's next notification is a new one, not a replacement of the closed id.
  q.push("bob", "bob", "again", "m4");
  assert.equal(q.take(10 * NOTIFY_EVERY_MS)!.replacesId, 0);
  assert.equal(q.amended, 3);
});

Deno.test("a correction waits for the notification's id, goes with the page open or busy (not an edit), and yields to a newer one", () => {
  const q = new NotifyQueue(0, 10);
  q.push("bob", "bob", "secret", "m1");
  q.take(0);
  // Deleted while gdbus shows it: nothing to correct until the server gives its id.
  q.amend("bob", "m1", undefined);
  q.shownAs("bob", 5);
  assert.deepEqual(q.take(0), { key: "bob", title: "bob", text: "", count: 0, replacesId: 5 });
  // The server gave no id: nothing known on screen to correct.
  q.push("carol", "carol", "x", "c1");
  q.take(0);
  q.shownAs("carol", 0);
  q.amend("carol", "c1", undefined);
  assert.equal(q.take(0), undefined);
  // The page opened (clear): an edit is forgotten, a deletion still goes.
  q.push("dave", "dave", "a", "d1");
  q.push("erin", "erin", "b", "e1");
  q.take(0);
  q.take(0);
  q.shownAs("dave", 6);
  q.shownAs("erin", 7);
  q.amend("dave", "d1", "a, edited");
  q.amend("erin", "e1", undefined);
  q.clear();
  assert.deepEqual(q.take(0), { key: "erin", title: "erin", text: "", count: 0, replacesId: 7 });
  assert.equal(q.take(0), undefined);
  // A newer message waits for the same conversation: it replaces the one on screen, no correction first.
  q.push("dave", "dave", "b", "d2");
  q.amend("dave", "d1", "a, edited again");
  const next = q.take(0)!;
  assert.deepEqual([next.text, next.count, next.replacesId], ["b", 1, 6]);
  assert.equal(q.take(0), undefined);
});

Deno.test("what a notification keeps of a message is bounded and shown as it would be; a flood's early messages only count", () => {
  const q = new NotifyQueue(0);
  const huge = "\u202E" + "y\n".repeat(40_000);
  assert.equal(shownText(shownText(huge)), shownText(huge), "applied again, nothing changes");
  for (let i = 0; i < 100; i++) q.push("bob", "bob", i === 99 ? huge : `m${i}`, `id${i}`);
  q.amend("bob", "id0", undefined); // not kept (older than the last MAX_KEPT): still counted
  for (let i = 99; i > 99 - MAX_KEPT; i--) q.amend("bob", `id${i}`, undefined);
  const p = q.take(NOTIFY_EVERY_MS)!;
  assert.deepEqual([p.count, p.text], [100 - MAX_KEPT, ""]);
  assert.equal(notificationBody(p, false), `${100 - MAX_KEPT} new messages`);
  assert.equal(notificationBody({ ...p, count: 1 }, false), "A new message");
});

/** A fake bus that records calls; `fail` makes the next calls throw it. */
class FakeBus implements DesktopBus {
  calls: { replacesId: number; summary: string; body: string }[] = [];
  fail: Error | undefined;
  caps = ["body", "body-markup"];
  capabilities() {
    return this.fail ? Promise.reject(this.fail) : Promise.resolve(this.caps);
  }
  notify(n: { replacesId: number; summary: string; body: string }) {
    if (this.fail) return Promise.reject(this.fail);
    this.calls.push(n);
    return Promise.resolve(this.calls.length);
  }
  closed: number[] = [];
  close(id: number) {
    if (this.fail) return Promise.reject(this.fail);
    this.closed.push(id);
    return Promise.resolve();
  }
}

function service(bus: DesktopBus) {
  const state = { pages: 0, busy: false, changed: 0 };
  const s = new NotifyService({
    bus,
    pagesOpen: () => state.pages,
    busy: () => state.busy,
    messageJson: (m) =>
      ({
        id: m.id,
        peer: { id: m.peer, name: `name of ${m.peer}` },
        text: m.text,
        direction: m.direction,
      }) as MessageJson,
  });
  s.start({ changed: () => state.changed++ } as unknown as ServiceContext, 0);
  let n = 0;
  const msg = (peer: string, text: string, extra: Partial<StoredMessage> = {}) =>
    s.onEvent({
      type: "message",
      message: { id: String(++n), peer, direction: "in", text, status: "received", ...extra } as StoredMessage,
    });
  const flush = async (now: number) => {
    s.handleTimeout(now);
    for (let i = 0; i < 10; i++) await Promise.resolve();
  };
  return { s, state, msg, flush };
}

Deno.test("the service notifies only while no page is open and not busy, and replaces a conversation's notification", async () => {
  const bus = new FakeBus();
  const { s, state, msg, flush } = service(bus);
  msg("alice", "<b>hi</b>");
  assert.equal(s.pollTimeout(), 0, "due now");
  await flush(0);
  assert.deepEqual(bus.calls, [{ replacesId: 0, summary: "name of alice", body: "&lt;b&gt;hi&lt;/b&gt;" }]);
  msg("alice", "again");
  await flush(1);
  assert.equal(bus.calls[1]!.replacesId, 1, "replaces alice's notification");
  // Our own messages and group copies are not notified.
  msg("alice", "mine", { direction: "out" });
  msg("alice", "copy", { copyOf: "x" });
  assert.equal(s.pollTimeout(), undefined);
  state.pages = 1;
  msg("bob", "page open");
  assert.equal(s.pollTimeout(), undefined, "the page shows it");
  state.pages = 0;
  state.busy = true;
  msg("bob", "busy");
  assert.equal(s.pollTimeout(), undefined, "busy: quiet");
  state.busy = false;
  msg("bob", "page closed: notifications resume");
  await flush(100_000);
  assert.equal(bus.calls.at(-1)!.body, "page closed: notifications resume");
  // Queued, then a page opens before its turn: the page shows it.
  msg("carol", "one");
  state.pages = 1;
  await flush(200_000);
  assert.equal(bus.calls.length, 3);
  assert.equal(s.pollTimeout(), undefined);
  assert.deepEqual((s.status().notifications as { skippedPageOpen: number }).skippedPageOpen, 1);
});

Deno.test("gdbus missing turns notifications off with a reason; a failing bus is counted and tried again later", async () => {
  const bus = new FakeBus();
  const { s, msg, flush } = service(bus);
  bus.fail = new Error("The name org.freedesktop.Notifications was not provided by any .service files");
  msg("alice", "one");
  await flush(0);
  const st = () => s.status().notifications as { enabled: boolean; failed: number; shown: number; off?: string };
  assert.equal(st().failed, 1);
  assert.equal(st().enabled, true);
  bus.fail = undefined;
  msg("alice", "two");
  await flush(10_000);
  assert.equal(st().shown, 1);
  bus.fail = new BusUnavailable("gdbus is not installed (Debian: apt-get install libglib2.0-bin)");
  msg("bob", "three");
  await flush(20_000);
  assert.equal(st().enabled, false);
  assert.match(st().off!, /gdbus is not installed/);
  msg("bob", "four");
  assert.equal(s.pollTimeout(), undefined, "off: nothing queued");
});

Deno.test("a file offer and a group message are notified as people read them; members' changes and outcomes are not", async () => {
  const bus = new FakeBus();
  const json = new Map<string, Partial<MessageJson>>([
    ["offer", { text: "Files offered: a.txt (1 file, 3 B)", files: { kind: "offer" } as MessageJson["files"] }],
    ["outcome", { text: "Files received", files: { kind: "received" } as MessageJson["files"] }],
    ["change", { text: "bob added carol", group: { id: "g1", name: "lab", change: "add" } }],
    ["group", { text: "hello lab", group: { id: "g1", name: "lab" } }],
    ["sealed", { text: "", sealed: { opened: false } }],
  ]);
  const s = new NotifyService({
    bus,
    pagesOpen: () => 0,
    busy: () => false,
    messageJson: (m) =>
      ({ id: m.id, peer: { id: m.peer, name: "bob" }, direction: "in", ...json.get(m.text) }) as MessageJson,
  });
  s.start({ changed: () => {} } as unknown as ServiceContext, 0);
  let t = 0;
  for (const text of json.keys()) {
    s.onEvent({ type: "message", message: { id: text, peer: "bob", direction: "in", text } as StoredMessage });
    s.handleTimeout(t += NOTIFY_EVERY_MS);
    for (let i = 0; i < 10; i++) await Promise.resolve();
  }
  assert.deepEqual(bus.calls.map((c) => [c.summary, c.body]), [
    ["bob", "Files offered: a.txt (1 file, 3 B)"],
    ["bob in @lab", "hello lab"],
    ["bob", "A sealed message"],
  ]);
});

Deno.test("the service takes a deleted or edited message back from the desktop, with a page open too; not ours, not copies", async () => {
  const bus = new FakeBus();
  const { s, state, msg, flush } = service(bus);
  const updated = (id: string, peer: string, extra: Partial<StoredMessage>) =>
    s.onEvent({
      type: "message-updated",
      message: { id, peer, direction: "in", text: "", status: "received", ...extra } as StoredMessage,
    });
  msg("alice", "the door code is 4711"); // id 1
  await flush(0);
  assert.deepEqual(bus.calls.map((c) => c.body), ["the door code is 4711"]);
  // Our own message of that id, or a group copy, changes nothing.
  updated("1", "alice", { direction: "out", deletedAt: 1 });
  updated("1", "alice", { copyOf: "x", deletedAt: 1 });
  assert.equal(s.pollTimeout(), undefined);
  // Its sender deletes it while a page is open: it leaves the desktop all the same.
  state.pages = 1;
  updated("1", "alice", { deletedAt: 1 });
  assert.equal(s.pollTimeout(), 0, "due now");
  await flush(1);
  assert.deepEqual(bus.closed, [1]);
  state.pages = 0;
  // Edited while waiting: shown edited; deleted while waiting: never shown.
  for (let i = 0; i < NOTIFY_BURST; i++) msg(`p${i}`, "x");
  for (let i = 0; i < NOTIFY_BURST; i++) await flush(2);
  msg("bob", "typo"); // id 5
  msg("carol", "wrong person"); // id 6
  updated("5", "bob", { text: "fixed", editedAt: 3 });
  updated("6", "carol", { deletedAt: 3 });
  await flush(NOTIFY_EVERY_MS * 10);
  await flush(NOTIFY_EVERY_MS * 20);
  assert.deepEqual(bus.calls.slice(-1).map((c) => [c.summary, c.body]), [["name of bob", "fixed"]]);
  assert.ok(!bus.calls.some((c) => c.body.includes("wrong person")));
  const st = s.status().notifications as { closed: number; amended: number };
  assert.deepEqual([st.closed, st.amended], [1, 3]);
});
