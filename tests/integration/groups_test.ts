/**
 * Group conversations between three daemons on loopback: made with the
 * CLI, every member files the messages under one conversation, a member
 * offline meanwhile catches up in order when it is back, and a leave
 * reaches every member, the one offline included.
 */
import assert from "node:assert/strict";
import type { GroupJson, MessageJson } from "../../src/api/types.ts";
import { freeUdpPort, killAll, runCli, startLoopbackDaemon, tempDataDir, until } from "../support/daemon_process.ts";

const http = (d: { httpUrl: string }) => d.httpUrl.replace("http://", "");

async function groupAt(d: { httpUrl: string }, name: string): Promise<GroupJson | undefined> {
  const groups: GroupJson[] = await (await fetch(`${d.httpUrl}/groups`)).json();
  return groups.find((g) => g.name === name);
}

async function groupHistory(d: { httpUrl: string }, name: string): Promise<MessageJson[]> {
  const r = await fetch(`${d.httpUrl}/messages?group=${encodeURIComponent(name)}`);
  assert.equal(r.status, 200, await r.clone().text());
  return await r.json();
}

Deno.test("a group of three: one conversation on every member, an offline member catches up in order, a leave reaches all", async () => {
  const port = freeUdpPort();
  const cDir = tempDataDir();
  const aDir = tempDataDir();
  try {
    let a = await startLoopbackDaemon(port, "alice", { dataDir: aDir }).started();
    const b = await startLoopbackDaemon(port, "bob").started();
    let c = await startLoopbackDaemon(port, "carol", { dataDir: cDir }).started();
    await a.joined(b.id, 5000);
    await a.joined(c.id, 5000);
    await b.joined(c.id, 5000);

    const made = await runCli(["group", "create", "lab", "bob", "carol", "--http", http(a)]);
    assert.equal(made.code, 0, made.stderr);
    assert.match(made.stdout, /^Created @lab: /);
    for (const d of [b, c]) {
      await until("the group to reach every member", async () => (await groupAt(d, "lab"))?.members.length === 3, 5000);
    }
    const gid = (await groupAt(a, "lab"))!.id;
    assert.equal((await groupAt(c, "lab"))!.id, gid, "one group id everywhere");

    // Carol stops (saying goodbye); alice and bob write; bob leaves while she is away.
    c.signal("SIGTERM");
    await c.wait();
    // Alice's event stream: events of the message she writes to the group, none of a member's copy.
    const events = new AbortController();
    const seen: string[] = [];
    const stream = fetch(`${a.httpUrl}/events`, { signal: events.signal }).then(async (r) => {
      for await (const chunk of r.body!.pipeThrough(new TextDecoderStream())) seen.push(chunk);
    }).catch(() => {});
    await new Promise((r) => setTimeout(r, 200));
    for (const [d, text] of [[a, "one"], [b, "two"], [a, "three"]] as const) {
      const r = await runCli(["send", "@lab", text, "--wait", "1", "--http", http(d)]);
      assert.ok(r.code === 75, `queued for carol: ${r.stdout}${r.stderr}`);
      assert.match(r.stdout, /^@lab: delivered to 1 of 2, queued for 1 offline$/m);
    }
    events.abort();
    await stream;
    const about = seen.join("").split("\n\n").filter((e) => e.includes('"text":"one"'))
      .map((e) => JSON.parse(e.slice(e.indexOf("data: ") + 6)) as MessageJson);
    assert.ok(about.length >= 1);
    assert.deepEqual(new Set(about.map((m) => `${m.id} ${m.peer.name} ${m.group?.name}`)).size, 1, "only the message");
    assert.equal(about[0]!.peer.name, "lab");
    const left = await runCli(["group", "leave", "@lab", "--http", http(b)]);
    assert.equal(left.code, 0, left.stderr);
    await until("alice to see bob leave", async () => (await groupAt(a, "lab"))?.members.length === 2, 5000);

    // Bob's copy of the conversation: his own message once (not once per member), alice's, in order.
    const atB = await groupHistory(b, "lab");
    assert.deepEqual(atB.map((m) => m.text), [
      `created the group “lab” with bob, carol`,
      "one",
      "two",
      "three",
      "left the group",
    ]);
    assert.deepEqual(atB.map((m) => m.group?.id), atB.map(() => gid));
    assert.equal(atB[0]!.group?.change, "create");
    // Group messages are not part of bob's conversation with alice.
    const direct: MessageJson[] = await (await fetch(`${b.httpUrl}/messages?peer=alice`)).json();
    assert.deepEqual(direct, []);

    // Carol is back: alice's and bob's outboxes deliver, in each sender's order, and bob's leave with them.
    c = await startLoopbackDaemon(port, "carol", { dataDir: cDir }).started();
    await until("carol to catch up", async () => (await groupHistory(c, "lab")).length === 5, 10_000);
    const atC = await groupHistory(c, "lab");
    const from = (name: string) => atC.filter((m) => m.peer.name === name).map((m) => m.text);
    assert.deepEqual(from("alice"), [`created the group “lab” with bob, carol`, "one", "three"]);
    assert.deepEqual(from("bob"), ["two", "left the group"]);
    const members = (g: GroupJson | undefined) => g?.members.map((m) => m.id).sort();
    await until("carol's members to be alice's", async () => {
      return JSON.stringify(members(await groupAt(c, "lab"))) === JSON.stringify(members(await groupAt(a, "lab")));
    }, 5000);
    assert.deepEqual(members(await groupAt(c, "lab")), [a.id, c.id].sort());
    assert.equal((await groupAt(b, "lab"))?.left, true);
    assert.match((await runCli(["status", "--http", http(c)])).stdout, /^groups: 1$/m);
    assert.match(await (await fetch(`${c.httpUrl}/metrics`)).text(), /^lanchat_groups 1$/m);

    // Alice's "three" now reached everyone: one message, a copy per member, all delivered.
    await until("alice's messages delivered to carol", async () => {
      const atA = await groupHistory(a, "lab");
      return atA.filter((m) => m.direction === "out").every((m) => m.status === "delivered");
    }, 10_000);
    const three = (await groupHistory(a, "lab")).find((m) => m.text === "three")!;
    assert.deepEqual(three.recipients?.map((r) => [r.name, r.status]).sort(), [
      ["bob", "delivered"],
      ["carol", "delivered"],
    ]);

    // The CLI's views: inbox --group shows the group's lines; bob can no longer write to it.
    const inbox = await runCli(["inbox", "--group", "lab", "--http", http(c)]);
    assert.equal(inbox.code, 0, inbox.stderr);
    // In the order it reached carol: each sender's messages in their order (the two senders' interleaved as they came).
    const lines = inbox.stdout.split("\n");
    const at = (text: string) => lines.findIndex((l) => l.endsWith(text));
    assert.ok(at("[lab] alice: one") >= 0 && at("[lab] alice: one") < at("[lab] alice: three"), inbox.stdout);
    assert.ok(at("[lab] bob: two") >= 0 && at("[lab] bob: two") < at("[lab] bob: left the group"), inbox.stdout);
    const refused = await runCli(["send", "@lab", "still here?", "--http", http(b)]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /You left “lab”/);

    // Alice adds bob back: his leave is older than her add, so every member, bob included, has him in again.
    const added = await runCli(["group", "add", "@lab", "bob", "--http", http(a)]);
    assert.equal(added.code, 0, added.stderr);
    assert.match(added.stdout, /^@lab: /);
    for (const d of [a, b, c]) {
      await until("bob to be in again everywhere", async () => {
        const g = await groupAt(d, "lab");
        return g !== undefined && g.left === undefined && g.members.length === 3;
      }, 5000);
    }
    // Bob talks in the group with chat @lab: what he types goes to both; each member's answer is shown.
    const chat = await runCli(["chat", "@lab", "--http", http(b)], { stdin: "back again\n" });
    assert.equal(chat.code, 0, chat.stdout + chat.stderr);
    assert.match(chat.stdout, /^chatting in @lab with (alice, carol|carol, alice); Ctrl-D ends$/m);
    await until(
      "alice to have bob's line",
      async () => (await groupHistory(a, "lab")).some((m) => m.text === "back again" && m.peer.name === "bob"),
      5000,
    );
    const again = await runCli(["group", "add", "@lab", "carol", "--http", http(a)]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already a member/);

    // Bad requests are refused in words, and nothing is made.
    const post = (path: string, body: unknown) =>
      fetch(`${a.httpUrl}${path}`, { method: "POST", body: JSON.stringify(body) }).then(async (r) => ({
        status: r.status,
        error: (await r.json()).error as string,
      }));
    const before = (await (await fetch(`${a.httpUrl}/groups`)).json()).length;
    assert.deepEqual(await post("/groups", { name: "evil\u001b[2J", members: ["carol"] }), {
      status: 400,
      error: "A group name contains control characters",
    });
    assert.equal((await post("/groups", { name: "x", members: [] })).status, 400);
    assert.equal((await post("/groups", { name: "x", members: ["nobody-at-all"] })).status, 404);
    assert.equal((await post("/groups", { name: " lab", members: ["carol"] })).status, 400);
    assert.equal((await fetch(`${a.httpUrl}/groups/%ZZ`)).status, 404);
    assert.equal((await fetch(`${a.httpUrl}/groups`).then((r) => r.json())).length, before);
    // Two groups of one name: "@lab" is ambiguous, never guessed; the id still names each.
    assert.equal((await runCli(["group", "create", "lab", "carol", "--new", "--http", http(a)])).code, 0);
    const twice = await runCli(["send", "@lab", "which one?", "--http", http(a)]);
    assert.equal(twice.code, 1);
    assert.match(twice.stderr, /@lab names 2 groups; say which by its id/);
    assert.equal((await runCli(["send", `@${gid.slice(0, 8)}`, "this one", "--http", http(a)])).code, 0);

    // Leaving answers the message that tells the others, as the API shows messages.
    const second = ((await (await fetch(`${a.httpUrl}/groups`)).json()) as GroupJson[]).find((g) => g.id !== gid)!;
    const leave = await fetch(`${a.httpUrl}/groups/${second.id}/leave`, { method: "POST" });
    const gone = await leave.json();
    assert.equal(leave.status, 200);
    assert.deepEqual([gone.group.left, gone.message.text, gone.message.group.change], [
      true,
      "left the group",
      "leave",
    ]);

    // Groups are kept across a restart.
    const before2 = await (await fetch(`${a.httpUrl}/groups`)).json();
    await a.kill();
    a = await startLoopbackDaemon(port, "alice", { dataDir: aDir }).started();
    assert.deepEqual(
      ((await (await fetch(`${a.httpUrl}/groups`)).json()) as GroupJson[]).map((
        g,
      ) => [g.id, g.members.map((m) => m.id)]),
      (before2 as GroupJson[]).map((g) => [g.id, g.members.map((m) => m.id)]),
    );
  } finally {
    await killAll();
  }
});
