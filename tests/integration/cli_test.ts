/** The CLI as a user runs it: a child process against a real daemon on loopback, or none. */
import assert from "node:assert/strict";
import type { MessageJson } from "../../src/api/types.ts";
import stringWidth from "string-width";
import { freeTcpPort, freeUdpPort, killAll, runCli, startLoopbackDaemon } from "../support/daemon_process.ts";
import { chatProcess } from "../support/chat_process.ts";

const start = (port: number, name: string) => startLoopbackDaemon(port, name);

Deno.test("lanchat peers prints the roster as a table and as JSON", async () => {
  const port = freeUdpPort();
  try {
    const a = await start(port, "alice").started();
    const b = await start(port, "bob").started();
    await a.joined(b.id, 2000);
    const http = a.httpUrl.replace("http://", "");
    const tableOut = await runCli(["peers", "--http", http]);
    assert.equal(tableOut.code, 0, tableOut.stderr);
    const [header, row, ...rest] = tableOut.stdout.trimEnd().split("\n");
    assert.match(header!, /^NAME\s+HOST\s+ADDRESS\s+STATE\s+SEEN\s+VIA\s+ID\s+KEY$/);
    assert.match(
      row!,
      new RegExp(
        `^bob\\s+\\S+\\s+127\\.0\\.0\\.1:${b.unicastPort}\\s+alive\\s+\\d+\\.\\ds ago\\s+lanchat\\s+${
          b.id.slice(0, 12)
        }\\s+${b.id.slice(0, 16).match(/.{4}/g)!.join(":")}$`,
      ),
    );
    assert.deepEqual(rest, []);
    const json = await runCli(["peers", "--json"], { env: { LANCHAT_HTTP: http } });
    assert.equal(json.code, 0, json.stderr);
    const peers = JSON.parse(json.stdout);
    assert.equal(peers.length, 1);
    assert.equal(peers[0].id, b.id);
    const status = await runCli(["status", "--http", http]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, new RegExp(`^alice \\(${a.id}\\)`));
    assert.match(status.stdout, /announcing every 500 ms on: lo \(127\.255\.255\.255\)/);
  } finally {
    await killAll();
  }
});

Deno.test("lanchat peers with no daemon says so in one line and exits 3", async () => {
  const port = freeTcpPort();
  for (const cmd of ["peers", "status"]) {
    const r = await runCli([cmd, "--http", `127.0.0.1:${port}`]);
    assert.equal(r.code, 3);
    assert.equal(r.stdout, "");
    assert.equal(
      r.stderr,
      `lanchat: No lanchat daemon answers at http://127.0.0.1:${port} (connection refused). Start one with "lanchat daemon", or point --http or LANCHAT_HTTP at a running one.\n`,
    );
  }
});

Deno.test("lanchat rejects bad flags and values with exit code 2", async () => {
  const shortKey = Deno.makeTempFileSync();
  Deno.writeTextFileSync(shortKey, btoa("short"));
  const cases: [string[], RegExp][] = [
    [["daemon", "--bogus"], /unknown option '--bogus'/],
    [["daemon", "--port", "70000"], /"70000" is not a port/],
    [["daemon", "--interval", "soon"], /"soon" is not a duration/],
    [["daemon", "--interval", "10ms"], /"10ms" is out of range/],
    [["daemon", "--broadcast", "198.18.0"], /is not an IPv4 address/],
    [["daemon", "--log-format", "xml"], /Allowed choices are text, json/],
    [["daemon", "--log-level", "loud"], /Unknown log level "loud"/],
    [["peers", "--jsn"], /unknown option '--jsn'/],
    [["fly"], /unknown command 'fly'/],
    [["daemon", "--key-file", "/nonexistent/group.key"], /Cannot read key file \/nonexistent\/group\.key/],
    [["daemon", "--key-file", shortKey], /holds 5 bytes, not 32; make one with "lanchat keygen"/],
    [["daemon", "--max-peers", "0"], /--max-peers/],
    [["daemon", "--unicast-port", "-1"], /"-1" is not a port/],
  ];
  for (const [args, message] of cases) {
    const r = await runCli(args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.ok(!/\n\s+at /.test(r.stderr), `no stack trace: ${r.stderr}`);
  }
});

Deno.test("lanchat --help on every subcommand describes it and exits 0", async () => {
  for (const cmd of [[], ["daemon"], ["peers"], ["status"]]) {
    const r = await runCli([...cmd, "--help"]);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^Usage: lanchat/);
  }
  const d = await runCli(["daemon", "--help"]);
  for (
    const flag of [
      "--interface",
      "--exclude-interface",
      "--broadcast",
      "--peer",
      "--interval",
      "--http",
      "--data-dir",
      "--log-format",
    ]
  ) {
    assert.match(d.stdout, new RegExp(flag));
  }
});

Deno.test("lanchat send reports delivery (exit 0), an unknown or ambiguous peer (exit 1) and an offline one (exit 75)", async () => {
  const port = freeUdpPort();
  try {
    const a = await start(port, "alice@h1").started();
    const b1 = await start(port, "bob@h2").started();
    const b2 = await start(port, "bob@h3").started();
    await a.joined(b1.id, 2000);
    await a.joined(b2.id, 2000);
    const http = a.httpUrl.replace("http://", "");
    const ok = await runCli(["send", "bob@h2", "lunch?", "--http", http]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /^delivered to bob@h2 in [\d.]+ ms\n$/);
    const unknown = await runCli(["send", "carol", "hi", "--http", http]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /^lanchat: No peer matches "carol"\nKnown peers:\n/);
    const ambiguous = await runCli(["send", "bob", "hi", "--http", http]);
    assert.equal(ambiguous.code, 1);
    assert.match(ambiguous.stderr, /"bob" matches 2 peers; say which\nMatching peers:\n {2}bob@h\d .*\n {2}bob@h\d /);
    b2.signal("SIGTERM");
    await a.left(b2.id, 2000);
    const offline = await runCli(["send", "bob@h3", "are you there?", "--http", http]);
    assert.equal(offline.code, 75, offline.stderr);
    assert.equal(offline.stdout, "queued for bob@h3: will be delivered when it is back\n");
    const stdin = await runCli(["send", b1.id.slice(0, 8), "-", "--http", http], { stdin: "from stdin\n" });
    assert.equal(stdin.code, 0, stdin.stderr);
    // --lines: 1,500 lines (two batches), each its own message, in order.
    const lines = Array.from({ length: 1500 }, (_, i) => `line ${i + 1}`);
    const many = await runCli(["send", "bob@h2", "-", "--lines", "--http", http], {
      stdin: lines.join("\n") + "\n\n",
    });
    assert.equal(many.code, 0, many.stderr);
    assert.equal(
      many.stdout,
      "1500 messages to bob@h2: 1500 delivered, 0 sent and not acknowledged yet, 0 queued, 0 failed\n",
    );
    const noDash = await runCli(["send", "bob@h2", "hi", "--lines", "--http", http]);
    assert.equal(noDash.code, 2);
    assert.match(noDash.stderr, /--lines reads standard input/);
    const inbox = await runCli(["inbox", "--json", "--limit", "2000", "--http", b1.httpUrl.replace("http://", "")]);
    assert.deepEqual(inbox.stdout.trim().split("\n").map((l) => JSON.parse(l).text), [
      "lunch?",
      "from stdin",
      ...lines,
    ]);
  } finally {
    await killAll();
  }
});

Deno.test("lanchat chat sends typed lines and prints the peer's messages as they arrive", async () => {
  const port = freeUdpPort();
  try {
    const a = await start(port, "alice").started();
    const b = await start(port, "bob").started();
    await a.joined(b.id, 2000);
    const chat = chatProcess(["chat", "bob", "--http", a.httpUrl.replace("http://", "")]);
    await chat.waitFor(/chatting with bob \(online\)/);
    // Bob writes while alice's chat is open: it prints.
    const r = await fetch(`${b.httpUrl}/messages?wait=5`, {
      method: "POST",
      body: JSON.stringify({ to: "alice", text: "hi alice" }),
    });
    assert.equal(r.status, 200);
    await chat.waitFor(/^bob: hi alice$/m);
    // Alice types two lines and ends input.
    await chat.write("hello bob\nsee you\n");
    await chat.end();
    const status = await chat.status;
    assert.equal(status.code, 0, chat.output());
    const got: MessageJson[] = await (await fetch(`${b.httpUrl}/messages`)).json();
    assert.deepEqual(got.filter((m) => m.direction === "in").map((m) => m.text), ["hello bob", "see you"]);
  } finally {
    await killAll();
  }
});

Deno.test("lanchat chat counts a message delivered when its ack's event comes before the POST answers", async () => {
  // A stand-in daemon that acks faster than it answers: the "delivered" event
  // for each message goes out on /events before the POST that sent it returns.
  const bob = { id: "b".repeat(32), name: "bob" };
  const enc = new TextEncoder();
  let events: ReadableStreamDefaultController<Uint8Array> | undefined;
  let n = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/resolve") return Response.json({ ...bob, online: true });
    if (path === "/events") {
      return new Response(
        new ReadableStream<Uint8Array>({ start: (c) => void (events = c) }),
        { headers: { "content-type": "text/event-stream" } },
      );
    }
    if (path === "/messages" && req.method === "POST") {
      const { text } = await req.json();
      const m = { id: `m${++n}`, peer: bob, direction: "out", text, status: "sent" };
      events?.enqueue(enc.encode(`event: delivered\ndata: ${JSON.stringify({ ...m, status: "delivered" })}\n\n`));
      await new Promise((r) => setTimeout(r, 100));
      return Response.json({ ...m, online: true }, { status: 202 });
    }
    return Response.json({ error: "not found" }, { status: 404 });
  });
  try {
    const chat = chatProcess(["chat", "bob", "--http", `127.0.0.1:${server.addr.port}`]);
    await chat.waitFor(/chatting with bob \(online\)/);
    await chat.write("hello bob\nsee you\n");
    await chat.end();
    const status = await chat.status;
    assert.equal(status.code, 0, chat.output());
    assert.equal(n, 2);
    assert.doesNotMatch(chat.output(), /not delivered/);
  } finally {
    await server.shutdown();
  }
});

Deno.test("peer text reaches the terminal with control characters shown; tables align CJK and emoji; --json is exact", async () => {
  const port = freeUdpPort();
  try {
    const a = await start(port, "alice").started();
    const b = await start(port, "小明😀").started();
    const c = await start(port, "eve\u009b31m\u202e").started();
    await Promise.all([a.joined(b.id, 2000), a.joined(c.id, 2000)]);
    const http = a.httpUrl.replace("http://", "");
    const nasty = "clear\x1b[2J\x1b[H title\x1b]0;owned\x07 bell\x07 csi\u009b31m\nsecond line";
    const sent = await fetch(`${b.httpUrl}/messages?wait=5`, {
      method: "POST",
      body: JSON.stringify({ to: a.id, text: nasty }),
    });
    assert.equal((await sent.json()).status, "delivered");
    const inbox = await runCli(["inbox", "--http", http]);
    assert.equal(inbox.code, 0, inbox.stderr);
    // deno-lint-ignore no-control-regex
    assert.doesNotMatch(inbox.stdout, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/, "no raw control character");
    assert.match(
      inbox.stdout,
      /小明😀: clear\^\[\[2J\^\[\[H title\^\[\]0;owned\^G bell\^G csi<U\+009B>31m\n {4}second line/,
    );
    const json = await runCli(["inbox", "--json", "--http", http]);
    assert.equal(JSON.parse(json.stdout.trim().split("\n").at(-1)!).text, nasty, "--json stays exact");

    const peers = await runCli(["peers", "--http", http]);
    assert.equal(peers.code, 0, peers.stderr);
    // deno-lint-ignore no-control-regex
    assert.doesNotMatch(peers.stdout, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e]/);
    assert.match(peers.stdout, /eve<U\+009B>31m<U\+202E> /);
    // Every column starts at the same display column on every line.
    const lines = peers.stdout.trimEnd().split("\n");
    const columnAt = (line: string, text: string) => stringWidth(line.slice(0, line.indexOf(text)));
    const hostCol = columnAt(lines[0]!, "HOST");
    for (const line of lines.slice(1)) {
      const host = line.split(/\s{2,}/)[1]!;
      assert.equal(columnAt(line, host), hostCol, `HOST column of ${JSON.stringify(line)}`);
    }
  } finally {
    await killAll();
  }
});
