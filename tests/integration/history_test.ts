/**
 * History through the API and the CLI: pages both ways by cursor and by
 * time (following the Link header), `inbox --before/--after`, and search,
 * CJK included. Two daemons on loopback.
 */
import assert from "node:assert/strict";
import type { MessageJson } from "../../src/api/types.ts";
import { freeUdpPort, killAll, runCli, startLoopbackDaemon } from "../support/daemon_process.ts";

Deno.test("history pages both ways through the API and inbox; search finds any text, CJK included", async () => {
  const port = freeUdpPort();
  try {
    const a = await startLoopbackDaemon(port, "alice").started();
    const b = await startLoopbackDaemon(port, "bob").started();
    await Promise.all([a.joined(b.id, 3000), b.joined(a.id, 3000)]);
    const http = a.httpUrl.replace("http://", "");
    const lines = Array.from({ length: 250 }, (_, i) => i === 200 ? "午饭吃什么 line 200" : `line ${i}`);
    const sent = await runCli(["send", b.id, "-", "--lines", "--http", http], { stdin: lines.join("\n") + "\n" });
    assert.equal(sent.code, 0, sent.stderr + sent.stdout);

    // Backward from the newest, following the Link header's rel="prev".
    const pages: string[][] = [];
    let url: string | undefined = `${a.httpUrl}/messages?limit=100`;
    while (url) {
      const res: Response = await fetch(url);
      const page: MessageJson[] = await res.json();
      if (page.length === 0) break;
      pages.unshift(page.map((m) => m.text));
      const prev = /<([^>]+)>; rel="prev"/.exec(res.headers.get("link") ?? "")?.[1];
      url = prev ? `${a.httpUrl}${prev}` : undefined;
    }
    assert.deepEqual(pages.map((p) => p.length), [50, 100, 100]);
    assert.deepEqual(pages.flat(), lines, "every message, oldest first, the oldest reachable");
    // Forward from the first.
    const all: MessageJson[] = await (await fetch(`${a.httpUrl}/messages?limit=10000`)).json();
    const forward: MessageJson[] = await (await fetch(`${a.httpUrl}/messages?after=${all[9]!.cursor}&limit=3`)).json();
    assert.deepEqual(forward.map((m) => m.text), ["line 10", "line 11", "line 12"]);
    // By time: what entered history at or after a message's own time starts at it (or just before, same ms).
    const at = all[120]!.sentAt;
    const since: MessageJson[] = await (await fetch(`${a.httpUrl}/messages?after=${encodeURIComponent(at)}&limit=1`))
      .json();
    assert.ok(Date.parse(since[0]!.sentAt) >= Date.parse(at) - 0 && since[0]!.cursor <= all[120]!.cursor);

    // inbox walks back and forward, saying how to go on.
    const back = await runCli(["inbox", "--limit", "3", "--before", String(all[100]!.cursor), "--http", http]);
    assert.equal(back.code, 0, back.stderr);
    // (issue 27: alice's own messages end with their state, ✓ delivered: not part of the text)
    assert.deepEqual(back.stdout.trim().split("\n").map((l) => l.replace(/^.*: /, "").replace(/ {2}✓$/, "")), [
      "line 97",
      "line 98",
      "line 99",
    ]);
    assert.match(
      back.stderr,
      new RegExp(`older: lanchat inbox --before ${all[97]!.cursor}; newer: lanchat inbox --after ${all[99]!.cursor}`),
    );
    const fwd = await runCli(["inbox", "--limit", "2", "--after", String(all[247]!.cursor), "--json", "--http", http]);
    assert.deepEqual(fwd.stdout.trim().split("\n").map((l) => JSON.parse(l).text), ["line 248", "line 249"]);
    const bad = await runCli(["inbox", "--before", "yesterday", "--http", http]);
    assert.equal(bad.code, 2);

    // Search: newest first, CJK, by peer, with paging.
    const found = await runCli(["search", "line 24", "--http", http]);
    assert.equal(found.code, 0, found.stderr);
    assert.deepEqual(
      found.stdout.trim().split("\n").map((l) => l.replace(/^.*: /, "").replace(/ {2}✓$/, "")),
      [
        "line 249",
        "line 248",
        "line 247",
        "line 246",
        "line 245",
        "line 244",
        "line 243",
        "line 242",
        "line 241",
        "line 240",
        "line 24",
      ],
    );
    const cjk = await (await fetch(`${b.httpUrl}/messages/search?q=${encodeURIComponent("吃什么")}`)).json();
    assert.deepEqual(
      cjk.messages.map((m: MessageJson) => m.text),
      ["午饭吃什么 line 200"],
      "the receiver finds it too",
    );
    assert.equal(cjk.complete, true);
    const short = await (await fetch(`${b.httpUrl}/messages/search?q=${encodeURIComponent("午饭")}`)).json();
    assert.equal(short.messages.length, 1, "two characters: the newest messages are scanned");
    // A full page says how to get the next one, as a command that can be pasted into a shell.
    const two = await runCli(["search", "line 2", "--peer", b.id, "--limit", "1", "--http", http]);
    assert.equal(two.code, 0, two.stderr);
    const more = /\(more: (.*)\)/.exec(two.stderr)?.[1];
    assert.ok(more, two.stderr);
    const first = /^#(\d+)/.exec(two.stdout)?.[1];
    assert.equal(more, `lanchat search 'line 2' --peer ${b.id} --before ${first}`);
    const none = await runCli(["search", "nowhere at all", "--http", http]);
    assert.match(none.stdout, /No message contains "nowhere at all"\./);
    const paged = await (await fetch(`${a.httpUrl}/messages/search?q=line&limit=2&before=${all[5]!.cursor}`)).json();
    assert.deepEqual(paged.messages.map((m: MessageJson) => m.text), ["line 4", "line 3"]);
    assert.equal((await fetch(`${a.httpUrl}/messages/search`)).status, 400);
    // Run as `deno task start` runs it (V8's gc exposed), the daemon can hand memory back after a burst.
    const status = await (await fetch(`${a.httpUrl}/status`)).json();
    assert.equal(status.memory.canCompact, true, "started without --expose-gc");
  } finally {
    await killAll();
  }
});
