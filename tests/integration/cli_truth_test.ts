/**
 * A CLI that tells the truth (issue 27, items 3, 4 and 8): the state of
 * your messages in `inbox` and `chat` (queued, sent, ✓ delivered, ✓✓ read,
 * ! failed), told again in `chat` as it changes, also across a stream that
 * drops; a file offer with its transfer id and `lanchat accept ID`;
 * `accept` saying where the files go and where they are; `chat` opening
 * with the last messages; `bob@host2` naming bob on host2.
 *
 * The edges run against a stand-in daemon that sends exactly the events and
 * pages a test wants (late, twice, out of order, of another conversation,
 * hostile names, a transfer that is not there); the rest against real
 * daemons on loopback.
 */
import assert from "node:assert/strict";
import type { MessageJson, TransferJson } from "../../src/api/types.ts";
import {
  freeTcpPort,
  freeUdpPort,
  killAll,
  runCli,
  startLoopbackDaemon,
  tempDataDir,
  until,
} from "../support/daemon_process.ts";
import { chatProcess } from "../support/chat_process.ts";
import { craftedClient } from "../support/ipmsg_client.ts";

const BOB = { id: "b".repeat(32), name: "bob" };
const CAROL = { id: "c".repeat(32), name: "carol" };
const T = "2026-12-04T10:00:00.000Z";

/** A message as the daemon shows it. */
function msg(cursor: number, direction: "in" | "out", text: string, more: Partial<MessageJson> = {}): MessageJson {
  return {
    id: `m${cursor}`.padEnd(32, "0"),
    cursor,
    direction,
    peer: BOB,
    seq: cursor,
    text,
    status: direction === "in" ? "received" : "sent",
    sentAt: T,
    ...more,
  };
}

/**
 * A stand-in daemon: `/resolve` (bob), `/messages` (pages of `history`,
 * `POST` adds one of yours as `sent`), `/transfers`, `/events` (what
 * `emit` sends, on every stream open; `drop` ends them).
 */
function standIn(history: MessageJson[], transfers: TransferJson[] = []) {
  const enc = new TextEncoder();
  const open = new Set<ReadableStreamDefaultController<Uint8Array>>();
  let streams = 0;
  const posted: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const url = new URL(req.url);
    if (url.pathname === "/resolve") return Response.json({ ...BOB, hostname: "host2", online: true });
    if (url.pathname === "/events") {
      streams++;
      return new Response(
        new ReadableStream<Uint8Array>({
          start: (c) => {
            open.add(c);
            c.enqueue(enc.encode(": hello\n\n"));
          },
        }),
        { headers: { "content-type": "text/event-stream" } },
      );
    }
    if (url.pathname === "/transfers") return Response.json(transfers);
    if (url.pathname === "/messages" && req.method === "POST") {
      const { text } = await req.json();
      posted.push(text);
      const m = msg(100 + posted.length, "out", text);
      history.push(m);
      return Response.json({ ...m, online: true }, { status: 202 });
    }
    if (url.pathname === "/messages") {
      const after = Number(url.searchParams.get("after") ?? 0);
      const limit = Number(url.searchParams.get("limit") ?? 50);
      const peer = url.searchParams.get("peer");
      const mine = history.filter((m) => (!peer || (m.peer.id === peer && !m.group)) && m.cursor > after);
      return Response.json(url.searchParams.has("after") ? mine.slice(0, limit) : mine.slice(-limit));
    }
    if (url.pathname === "/messages/read") return Response.json({ read: 0 });
    return Response.json({ error: "not found" }, { status: 404 });
  });
  return {
    http: `127.0.0.1:${server.addr.port}`,
    posted,
    streams: () => streams,
    emit: (type: string, data: unknown) => {
      for (const c of open) {
        try {
          c.enqueue(enc.encode(`event: ${type}\ndata: ${JSON.stringify(data)}\n\n`));
        } catch {
          open.delete(c);
        }
      }
    },
    drop: () => {
      for (const c of open) c.close();
      open.clear();
    },
    close: () => server.shutdown(),
  };
}

/** Waits until daemon `d` has transfer `id` in `state`. */
function stateAt(d: { httpUrl: string }, id: string, state: TransferJson["state"]): Promise<void> {
  return until(`transfer ${id} ${state}`, async () => {
    const r = await fetch(`${d.httpUrl}/transfers/${id}`);
    return r.ok && (await r.json()).state === state;
  }, 10_000);
}

/** How many times `s` occurs in `text`. */
const count = (text: string, s: string) => text.split(s).length - 1;

Deno.test("chat tells each later state of a message of yours once, in order; nothing of another conversation's; what it missed while its stream was down", async () => {
  const old = msg(2, "out", "my old one", { status: "delivered" });
  const unread = msg(3, "out", "unread yet", { status: "sent" });
  const history = [msg(1, "in", "earlier"), old, unread];
  const d = standIn(history);
  const chat = chatProcess(["chat", "bob", "--http", d.http]);
  try {
    await chat.waitFor(/chatting with bob \(online\); Ctrl-D ends\n/);
    // It opens with the last messages, yours with their state.
    await chat.waitFor(/^you: unread yet {2}\(sent\)$/m);
    assert.match(chat.output(), /\nbob: earlier\nyou: my old one {2}✓\nyou: unread yet {2}\(sent\)\n/);

    await chat.write("hello\n");
    await until("posted", () => Promise.resolve(d.posted.length === 1), 10_000);
    const hello = history.at(-1)!;
    d.emit("delivered", { ...hello, status: "delivered" });
    await chat.waitFor(/^\(✓ delivered: “hello”\)$/m);
    // Twice, and a step back (a late "sent"): nothing more.
    d.emit("delivered", { ...hello, status: "delivered" });
    d.emit("sent", { ...hello, status: "sent" });
    // Receipts of other conversations: carol's message, and a group's (bob in it): not this one.
    d.emit("read", { ...msg(50, "out", "to carol"), peer: CAROL, status: "delivered", readAt: T });
    d.emit("read", { ...msg(51, "out", "in the group"), group: { id: "9".repeat(32), name: "lab" }, readAt: T });
    d.emit("read", { ...hello, status: "delivered", readAt: T });
    await chat.waitFor(/^\(✓✓ read: “hello”\)$/m);
    d.emit("read", { ...unread, status: "delivered", readAt: T });
    await chat.waitFor(/^\(✓✓ read: “unread yet”\)$/m);

    // The stream drops; meanwhile bob reads the old one and writes. Back: both are told, once.
    history[1] = { ...old, readAt: T };
    history.push(msg(200, "in", "while you were away"));
    d.drop();
    await chat.waitFor(/\(reconnected to the daemon\)/);
    await chat.waitFor(/^\(✓✓ read: “my old one”\)$/m);
    await chat.waitFor(/^bob: while you were away$/m);

    // One of yours to bob sent from elsewhere (another terminal) that failed: said, as before this change.
    d.emit("failed", { ...msg(60, "out", "from elsewhere"), status: "failed", error: "refused" });
    await chat.waitFor(/^\(! not delivered: “from elsewhere”: refused\)$/m);
    // Refused by the peer: ! and why.
    await chat.write("doomed\n");
    await until("posted", () => Promise.resolve(d.posted.length === 2), 10_000);
    d.emit("failed", { ...history.at(-1)!, status: "failed", error: "bad-utf8" });
    await chat.waitFor(/^\(! not delivered: “doomed”: bad-utf8\)$/m);
    await chat.end();
    assert.equal((await chat.status).code, 0, chat.output());
    const out = chat.output();
    for (const line of ["(✓ delivered: “hello”)", "(✓✓ read: “hello”)", "(✓✓ read: “my old one”)"]) {
      assert.equal(count(out, line), 1, `${line} once in:\n${out}`);
    }
    assert.doesNotMatch(out, /carol|in the group|sent: “hello”/);
    assert.equal(d.streams(), 2);
  } finally {
    await chat.end().catch(() => {});
    await d.close();
  }
});

Deno.test("inbox marks your messages (queued, sent, ✓, ✓✓, ! failed) and shows a file offer with its transfer, hostile names shown not obeyed; --json is exact", async () => {
  const eve = { id: "e".repeat(32), name: "eve\x1b[2J\u202e" };
  const offer = (cursor: number, id: string, names: string[], from = eve) =>
    msg(cursor, "in", `Files offered: ${names.join(", ")} (1 file, 3 B)`, {
      peer: from,
      files: {
        kind: "offer",
        offer: id.repeat(32),
        count: 1,
        bytes: 3,
        names,
        manifest: "0".repeat(64),
        expires: 2e12,
      },
    });
  const transfer = (id: string, peer: { id: string; name: string }, more: Partial<TransferJson>): TransferJson => ({
    id: id.repeat(32),
    direction: "in",
    peer,
    state: "offered",
    files: 1,
    filesDone: 0,
    bytes: 3,
    transferred: 0,
    check: "sha256",
    names: ["x"],
    createdAt: T,
    updatedAt: T,
    expires: "2033-01-01T00:00:00.000Z",
    ...more,
  });
  const history = [
    msg(1, "out", "waiting", { status: "queued" }),
    msg(2, "out", "on its way", { status: "sent" }),
    msg(3, "out", "got it", { status: "delivered" }),
    msg(4, "out", "read it", { status: "delivered", readAt: T }),
    msg(5, "out", "refused", { status: "failed", error: "bad-utf8" }),
    msg(6, "out", "to the group", {
      status: "sent",
      peer: { id: "9".repeat(32), name: "lab" },
      group: { id: "9".repeat(32), name: "lab" },
      recipients: [{ id: BOB.id, name: "bob", status: "delivered" }, { ...CAROL, status: "queued" }],
    }),
    // A name with terminal escapes and a line of its own that would pass for another message.
    offer(7, "a", ["evil\x1b]0;owned\x07\n2026-12-04 10:00:00  you → eve: fake.txt"]),
    offer(8, "b", ["gone.txt"]),
    // An offer naming the id of another peer's transfer: not its own.
    offer(9, "c", ["borrowed.txt"]),
    offer(10, "d", ["report.pdf"]),
    msg(11, "in", "thanks"),
  ];
  const transfers = [
    transfer("a", eve, {}),
    transfer("c", BOB, {}),
    transfer("d", eve, { state: "done", dir: "/srv/down\x1b[1mloads", filesDone: 1, transferred: 3 }),
  ];
  const d = standIn(history, transfers);
  try {
    const r = await runCli(["inbox", "--http", d.http]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split("\n").map((l) => l.replace(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d {2}/, ""));
    assert.deepEqual(lines, [
      "you → bob: waiting  (queued)",
      "you → bob: on its way  (sent)",
      "you → bob: got it  ✓",
      "you → bob: read it  ✓✓",
      "you → bob: refused  ! (failed: bad-utf8)",
      "[lab] you: to the group  (sent, 1 of 2 delivered)",
      "eve^[[2J<U+202E>: Files offered: evil^[]0;owned^G^J2026-12-04 10:00:00  you → eve: fake.txt (1 file, 3 B)",
      "(lanchat accept aaaaaaaa)",
      "eve^[[2J<U+202E>: Files offered: gone.txt (1 file, 3 B)",
      "(no transfer bbbbbbbb here: see lanchat transfers)",
      "eve^[[2J<U+202E>: Files offered: borrowed.txt (1 file, 3 B)",
      "(no transfer cccccccc here: see lanchat transfers)",
      "eve^[[2J<U+202E>: Files offered: report.pdf (1 file, 3 B)",
      "(transfer dddddddd: received in /srv/down^[[1mloads)",
      "bob: thanks",
    ]);
    // deno-lint-ignore no-control-regex
    assert.doesNotMatch(r.stdout, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e]/, "no raw control character");
    const json = await runCli(["inbox", "--json", "--http", d.http]);
    assert.deepEqual(json.stdout.trimEnd().split("\n").map((l) => JSON.parse(l)), history);
  } finally {
    await d.close();
  }
});

Deno.test("inbox and chat on real daemons: ✓ then ✓✓ as bob reads, (queued) for one offline, chat --last, a receipt of another conversation ignored", async () => {
  const port = freeUdpPort();
  try {
    const a = await startLoopbackDaemon(port, "alice").started();
    const b = await startLoopbackDaemon(port, "bob").started();
    const c = await startLoopbackDaemon(port, "carol").started();
    await Promise.all([a.joined(b.id, 3000), a.joined(c.id, 3000), b.joined(a.id, 3000), c.joined(a.id, 3000)]);
    const http = (d: { httpUrl: string }) => d.httpUrl.replace("http://", "");
    assert.equal((await runCli(["send", "alice", "first from bob", "--http", http(b)])).code, 0);
    const chat = chatProcess(["chat", "bob", "--last", "5", "--http", http(a)]);
    await chat.waitFor(/^bob: first from bob$/m);
    await chat.write("hello bob\n");
    await chat.waitFor(/^\(✓ delivered: “hello bob”\)$/m);
    // Carol gets one from alice and reads it: a receipt of another conversation, not this chat's.
    assert.equal((await runCli(["send", "carol", "for carol only", "--http", http(a)])).code, 0);
    assert.equal((await runCli(["inbox", "--http", http(c)])).code, 0);
    await until("carol's receipt at alice", async () => {
      const r = await runCli(["inbox", "--peer", "carol", "--http", http(a)]);
      return r.stdout.includes("for carol only  ✓✓");
    }, 10_000);
    // Bob reads alice's line (his inbox prints it): alice's chat says so.
    assert.equal((await runCli(["inbox", "--http", http(b)])).code, 0);
    await chat.waitFor(/^\(✓✓ read: “hello bob”\)$/m);
    await chat.end();
    assert.equal((await chat.status).code, 0, chat.output());
    assert.doesNotMatch(chat.output(), /carol/);

    // Carol goes away: a message to her waits, and says so.
    c.signal("SIGTERM");
    await a.left(c.id, 5000);
    assert.equal((await runCli(["send", "carol", "later", "--http", http(a)])).code, 75);
    const inbox = await runCli(["inbox", "--http", http(a)]);
    assert.match(inbox.stdout, /you → bob: hello bob {2}✓✓\n/);
    assert.match(inbox.stdout, /you → carol: later {2}\(queued\)\n/);

    // Opening again: the last two messages, with their state; --last 0 shows none.
    const again = await runCli(["chat", "bob", "--last", "2", "--http", http(a)], { stdin: "" });
    assert.match(again.stdout, /Ctrl-D ends\nbob: first from bob\nyou: hello bob {2}✓✓\n/);
    const none = await runCli(["chat", "bob", "--last", "0", "--http", http(a)], { stdin: "" });
    assert.doesNotMatch(none.stdout, /hello bob/);
    const bad = await runCli(["chat", "bob", "--last", "many", "--http", http(a)], { stdin: "" });
    assert.equal(bad.code, 2, bad.stderr);
    // In a terminal the same: a line of its own for the step, after the line typed (nothing redrawn).
    const tty = await runCli(["chat", "bob", "--last", "0", "--http", http(a)], {
      terminal: true,
      stdin: "on a tty\n",
    });
    assert.match(tty.stdout, /\(✓ delivered: “on a tty”\)\r?\n/);
    // deno-lint-ignore no-control-regex
    assert.doesNotMatch(tty.stdout, /\x1b\[\d*[AKJ]/, "no cursor movement or erasing");
  } finally {
    await killAll();
  }
});

Deno.test("a file offer in inbox has its id and `lanchat accept ID`; accept says where the files go and where they are; an id not there is refused", async () => {
  const port = freeUdpPort();
  const downloads = Deno.makeTempDirSync({ prefix: "lanchat-truth-dl-" });
  const src = Deno.makeTempDirSync({ prefix: "lanchat-truth-src-" });
  try {
    const a = await startLoopbackDaemon(port, "alice").started();
    // A relative --downloads: the daemon makes it absolute, so accept can say where.
    const rel = `${"../".repeat(Deno.cwd().split("/").length - 1)}${downloads.slice(1)}/rel-downloads`;
    const b = await startLoopbackDaemon(port, "bob", { extra: ["--downloads", rel] }).started();
    await Promise.all([a.joined(b.id, 3000), b.joined(a.id, 3000)]);
    const http = (d: { httpUrl: string }) => d.httpUrl.replace("http://", "");
    await Deno.writeTextFile(`${src}/report.txt`, "the report");
    await Deno.writeTextFile(`${downloads}/report.txt`, "already here");
    const sent = await runCli(["send-file", "bob", `${src}/report.txt`, "--wait", "1", "--json", "--http", http(a)]);
    const id = (JSON.parse(sent.stdout) as TransferJson).id;
    await stateAt(b, id, "offered");
    const inbox = await runCli(["inbox", "--http", http(b)]);
    assert.match(
      inbox.stdout,
      new RegExp(`alice: Files offered: report\\.txt \\(1 file, 10 B\\)\\n\\(lanchat accept ${id.slice(0, 8)}\\)\\n`),
    );
    // Alice's side: her offer, delivered, with its transfer's state.
    const mine = await runCli(["inbox", "--http", http(a)]);
    assert.match(
      mine.stdout,
      new RegExp(`you → bob: Files offered: report\\.txt .* {2}✓✓?\\n\\(transfer ${id.slice(0, 8)}: `),
    );

    const gone = await runCli(["accept", "deadbeef", "--http", http(b)]);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /No transfer deadbeef: see lanchat transfers/);

    const acc = await runCli(["accept", id.slice(0, 8), "--to", downloads, "--http", http(b)]);
    assert.equal(acc.code, 0, acc.stderr);
    // First where they go, last where they are (a progress line may come between, as with send-file).
    const said = acc.stdout.trimEnd().split("\n");
    assert.equal(said[0], `accepted 1 file (10 B) from alice: saving in ${downloads}`);
    assert.equal(said.at(-1), `received 1 file (10 B) from alice, checked, in ${downloads}: report (1).txt`);
    assert.equal(await Deno.readTextFile(`${downloads}/report (1).txt`), "the report");
    const after = await runCli(["inbox", "--http", http(b)]);
    assert.match(after.stdout, new RegExp(`\\(transfer ${id.slice(0, 8)}: received in ${downloads}\\)\\n`));

    // Without --to: the daemon's downloads folder, absolute; --no-wait returns at once.
    const second = await runCli(["send-file", "bob", `${src}/report.txt`, "--wait", "1", "--json", "--http", http(a)]);
    const id2 = (JSON.parse(second.stdout) as TransferJson).id;
    await stateAt(b, id2, "offered");
    const quick = await runCli(["accept", id2, "--no-wait", "--http", http(b)]);
    assert.equal(quick.code, 0, quick.stderr);
    assert.equal(quick.stdout, `accepted 1 file (10 B) from alice: saving in ${downloads}/rel-downloads\n`);
    await stateAt(b, id2, "done");
    assert.equal(await Deno.readTextFile(`${downloads}/rel-downloads/report.txt`), "the report");
  } finally {
    await killAll();
    for (const d of [downloads, src]) await Deno.remove(d, { recursive: true }).catch(() => {});
  }
});

Deno.test("the README's bob@host2 names the peer called bob on that host; two bobs there are listed with their host", async () => {
  const port = freeUdpPort();
  const host = Deno.hostname();
  try {
    const a = await startLoopbackDaemon(port, "alice").started();
    const b = await startLoopbackDaemon(port, "bob").started();
    await a.joined(b.id, 3000);
    const http = a.httpUrl.replace("http://", "");
    const ok = await runCli(["send", `bob@${host}`, "found you", "--http", http]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /^delivered to bob in /);
    const nowhere = await runCli(["send", "bob@no-such-host", "x", "--http", http]);
    assert.equal(nowhere.code, 1);
    assert.match(nowhere.stderr, /No peer matches "bob@no-such-host"/);
    // A peer whose name is bob@HOST itself: two matches, listed with their hosts, never guessed.
    const named = await startLoopbackDaemon(port, `bob@${host}`, { dataDir: tempDataDir() }).started();
    await a.joined(named.id, 3000);
    const two = await runCli(["send", `bob@${host}`, "which?", "--http", http]);
    assert.equal(two.code, 1);
    assert.match(two.stderr, new RegExp(`"bob@${host}" matches 2 peers; say which\\nMatching peers:\\n`));
    assert.equal(count(two.stderr, `  bob on ${host}  ${b.id.slice(0, 12)}  online`), 1, two.stderr);
    assert.equal(count(two.stderr, `  bob@${host} on ${host}  ${named.id.slice(0, 12)}  online`), 1, two.stderr);
    // A second node calling itself bob on the same host: a name claimed by two keys, listed too.
    const b2 = await startLoopbackDaemon(port, "bob").started();
    await a.joined(b2.id, 3000);
    const three = await runCli(["send", `bob@${host}`, "which?", "--http", http]);
    assert.equal(three.code, 1);
    assert.match(three.stderr, /claimed by more than one node key/);
    assert.equal(count(three.stderr, `  bob on ${host}  `), 2, three.stderr);
  } finally {
    await killAll();
  }
});

Deno.test("an IP Messenger user is named NICK@HOST by the host its packets give; files it sends with a message show how to take them, in inbox and chat", async () => {
  const ipmsgPort = freeUdpPort();
  const client = craftedClient(ipmsgPort);
  try {
    const d = await startLoopbackDaemon(freeUdpPort(), "alice", {
      extra: ["--ipmsg", "--ipmsg-port", String(ipmsgPort)],
    }).started();
    const http = d.httpUrl.replace("http://", "");
    // The crafted client enters as nickname "root", login root, on host "vm" (all from its packets).
    await client.entry(1);
    // (It never acknowledges: sent, not delivered.)
    await until("root is known", async () => {
      const r = await runCli(["send", "root@vm", "hi", "--http", http]);
      return r.code === 75 && r.stdout === "sent to root, not acknowledged yet: will keep trying\n";
    }, 10_000);
    const again = await runCli(["send", "root@VM", "hi again", "--http", http]);
    assert.equal(again.code, 75, `the host without case: ${again.stderr}`);
    const chat = chatProcess(["chat", "root@vm", "--http", http]);
    // (Silent, it is soon taken for gone: what it was sent waits, queued.)
    await chat.waitFor(/^you: hi again {2}\((sent|queued)\)$/m);
    await client.message(21, "take this", "0:report.pdf:2b67:6500000:1:");
    await chat.waitFor(/^root: take this$/m);
    const offers: TransferJson[] = await (await fetch(`${d.httpUrl}/transfers`)).json();
    const id = offers.find((t) => t.direction === "in")!.id.slice(0, 8);
    await chat.waitFor(new RegExp(`^\\(root offers 1 file \\(11\\.1 kB\\): lanchat accept ${id}\\)$`, "m"));
    await chat.end();
    const inbox = await runCli(["inbox", "--http", http]);
    assert.match(
      inbox.stdout,
      new RegExp(`root: take this\\n {4}\\(Files offered: report\\.pdf .*\\)\\n\\(lanchat accept ${id}\\)\\n`),
    );
  } finally {
    client.sock.close();
    await killAll();
  }
});

Deno.test("inbox --follow tells a step of a message of yours it printed, once, naming the peer; with --peer not another's; --json prints no such line", async () => {
  const mine = msg(1, "out", "lunch?", { status: "sent" });
  const toCarol = { ...msg(2, "out", "dinner?", { status: "sent" }), peer: CAROL };
  const d = standIn([mine, toCarol]);
  const all = chatProcess(["inbox", "--follow", "--http", d.http]);
  const bobOnly = chatProcess(["inbox", "--follow", "--peer", "bob", "--http", d.http]);
  const json = chatProcess(["inbox", "--follow", "--json", "--http", d.http]);
  try {
    await all.waitFor(/you → carol: dinner\? {2}\(sent\)\n/);
    await bobOnly.waitFor(/you → bob: lunch\? {2}\(sent\)\n/);
    await json.waitFor(/"dinner\?"/);
    await until("three streams", () => Promise.resolve(d.streams() === 3), 10_000);
    d.emit("delivered", { ...mine, status: "delivered" });
    d.emit("delivered", { ...toCarol, status: "delivered" });
    d.emit("read", { ...mine, status: "delivered", readAt: T });
    d.emit("delivered", { ...mine, status: "delivered" });
    await all.waitFor(/\(✓✓ read by bob: “lunch\?”\)\n/);
    await bobOnly.waitFor(/\(✓✓ read by bob: “lunch\?”\)\n/);
    // A message after the steps: everything before it was handled by then.
    d.emit("message", msg(3, "in", "yes"));
    for (const p of [all, bobOnly, json]) await p.waitFor(/yes/);
    assert.match(
      all.output(),
      /\(✓ delivered to bob: “lunch\?”\)\n\(✓ delivered to carol: “dinner\?”\)\n\(✓✓ read by bob: /,
    );
    assert.equal(count(all.output(), "(✓ delivered to bob"), 1);
    assert.doesNotMatch(bobOnly.output(), /carol|dinner/);
    assert.equal(json.output().trimEnd().split("\n").length, 3, json.output());
  } finally {
    for (const p of [all, bobOnly, json]) await p.interrupt();
    await d.close();
  }
});

Deno.test("chat across a daemon restart: a receipt that came while it was away is told once it is back", async () => {
  const port = freeUdpPort();
  const dataDir = tempDataDir();
  const httpPort = freeTcpPort();
  const startA = () =>
    startLoopbackDaemon(port, "alice", { dataDir, extra: ["--http", `127.0.0.1:${httpPort}`] }).started();
  try {
    const a = await startA();
    const b = await startLoopbackDaemon(port, "bob").started();
    await Promise.all([a.joined(b.id, 3000), b.joined(a.id, 3000)]);
    const chat = chatProcess(["chat", "bob", "--http", `127.0.0.1:${httpPort}`]);
    await chat.waitFor(/chatting with bob \(online\)/);
    await chat.write("are you there?\n");
    await chat.waitFor(/^\(✓ delivered: “are you there\?”\)$/m);
    a.signal("SIGTERM");
    await a.wait();
    await chat.waitFor(/the daemon went away/);
    // Bob reads it while alice's daemon is down: his receipt waits for her.
    assert.equal((await runCli(["inbox", "--http", b.httpUrl.replace("http://", "")])).code, 0);
    await startA();
    await chat.waitFor(/\(reconnected to the daemon\)/);
    await chat.waitFor(/^\(✓✓ read: “are you there\?”\)$/m);
    await chat.end();
    assert.equal(count(chat.output(), "(✓✓ read:"), 1, chat.output());
    assert.equal(count(chat.output(), "(✓ delivered:"), 1, chat.output());
  } finally {
    await killAll();
  }
});
