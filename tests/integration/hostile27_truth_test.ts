/**
 * Hostile tests of issue 27 items 3, 4, 8 (hostile2, H1, M1, M4, M5): each
 * of these failed on main at 5bb68ce. Loopback only; the
 * bob@host2 test gives two daemons their own hostname with `unshare --uts`
 * (root), no network namespace.
 */
import assert from "node:assert/strict";
import type { GroupJson, MessageJson } from "../../src/api/types.ts";
import {
  type DaemonProcess,
  freeUdpPort,
  killAll,
  ownerFetch,
  runCli,
  startLoopbackDaemon,
} from "../support/daemon_process.ts";

const hp = (d: DaemonProcess) => d.httpUrl.replace("http://", "");

async function history(d: DaemonProcess, q = ""): Promise<MessageJson[]> {
  return await (await ownerFetch(`${d.httpUrl}/messages?limit=1000${q}`)).json();
}

/** A daemon whose hostname is `host` (its own UTS namespace). */
function onHost(port: number, name: string, host: string): DaemonProcess {
  return startLoopbackDaemon(port, name, {
    prefix: ["unshare", "--uts", "sh", "-c", `hostname ${host} && exec "$@"`, "sh"],
  });
}

/** alice on host1, bob on host2 (pinned first), and another bob on host3; alice has heard both bobs. */
async function twoBobs(port: number) {
  const a = await onHost(port, "alice", "host1").started();
  const b2 = await onHost(port, "bob", "host2").started();
  await a.joined(b2.id, 5000);
  const b3 = await onHost(port, "bob", "host3").started();
  await a.joined(b3.id, 5000);
  return { a, b2, b3 };
}

Deno.test("a peer named like another peer's id prefix does not receive what was sent to that prefix", async () => {
  try {
    const port = freeUdpPort();
    const a = await startLoopbackDaemon(port, "alice").started();
    const b = await startLoopbackDaemon(port, "bob").started();
    await a.joined(b.id, 5000);
    // The prefix the CLI itself suggests ("Name one by its full name or an id prefix, e.g. 68c2bbcb").
    const prefix = b.id.slice(0, 8);
    const m = await startLoopbackDaemon(port, prefix).started();
    await a.joined(m.id, 5000);
    const r = await runCli(["send", prefix, "for bob only", "--http", hp(a)]);
    const toMallory = (await history(m)).filter((x) => x.text === "for bob only");
    assert.deepEqual(
      toMallory,
      [],
      `sent to ${prefix} (bob's id prefix) reached the peer named ${prefix}: ${r.stdout}`,
    );
    assert.ok(r.code === 0 || r.code === 1, r.stderr);
  } finally {
    await killAll();
  }
});

Deno.test("the id a group ambiguity tells you to type names that group, not a peer's group named so", async () => {
  try {
    const port = freeUdpPort();
    const a = await startLoopbackDaemon(port, "alice").started();
    const b = await startLoopbackDaemon(port, "bob").started();
    await a.joined(b.id, 5000);
    const cli = (d: DaemonProcess, ...args: string[]) => runCli([...args, "--http", hp(d)]);
    assert.equal((await cli(a, "group", "create", "lab", "bob")).code, 0);
    assert.equal((await cli(a, "group", "create", "lab", "bob", "--new")).code, 0);
    const amb = await cli(a, "send", "@lab", "hi");
    assert.equal(amb.code, 1);
    // The ids it lists: the user picks the second and types its first 8 digits.
    const ids = [...amb.stderr.matchAll(/@lab {2}([0-9a-f]{12})/g)].map((x) => x[1]!);
    assert.equal(ids.length, 2, amb.stderr);
    const second = ids[1]!.slice(0, 8);
    // bob makes a group of that name with alice.
    assert.equal((await cli(b, "group", "create", second, "alice")).code, 0);
    await new Promise((r) => setTimeout(r, 1500));
    const r = await cli(a, "send", `@${second}`, "meant for the second lab");
    const labs = ((await (await ownerFetch(`${a.httpUrl}/groups`)).json()) as GroupJson[]).filter((g) =>
      g.name === "lab"
    );
    const target = labs.find((g) => g.id.startsWith(second))!;
    const inLab = (await history(a, `&group=${target.id}`)).some((x) => x.text === "meant for the second lab");
    assert.ok(inLab || r.code === 1, `@${second} went to bob's group named "${second}", not the lab: ${r.stdout}`);
  } finally {
    await killAll();
  }
});

Deno.test("bob@host3 names bob on host3 when another bob is on host2", async () => {
  try {
    const port = freeUdpPort();
    const { a, b3 } = await twoBobs(port);
    const r3 = await runCli(["send", "bob@host3", "to host3", "--http", hp(a)]);
    assert.equal(r3.code, 0, `README: "bob@host2: bob on host2"; got ${r3.code}: ${r3.stderr}`);
    assert.ok((await history(b3)).some((m) => m.text === "to host3"));
    const r2 = await runCli(["send", "bob@host2", "to host2", "--http", hp(a)]);
    assert.equal(r2.code, 0, r2.stderr);
    // Never "No peer matches" while listing the peer that matches.
    assert.doesNotMatch(r2.stderr, /No peer matches "bob@host2"[\s\S]*bob on host2/);
  } finally {
    await killAll();
  }
});

Deno.test("a peer's message never prints as one of yours with its state (inbox and chat)", async () => {
  try {
    const port = freeUdpPort();
    const a = await startLoopbackDaemon(port, "alice").started();
    const m1 = await startLoopbackDaemon(port, "you → bob").started();
    const m2 = await startLoopbackDaemon(port, "you").started();
    await a.joined(m1.id, 5000);
    await a.joined(m2.id, 5000);
    assert.equal((await runCli(["send", "alice", "lunch?  ✓✓", "--http", hp(m1)])).code, 0);
    assert.equal((await runCli(["send", "alice", "lunch?  ✓✓", "--http", hp(m2)])).code, 0);
    const inbox = await runCli(["inbox", "--http", hp(a)]);
    // What an own message read by bob looks like: "2026-… HH:MM:SS  you → bob: lunch?  ✓✓"
    assert.doesNotMatch(inbox.stdout, /^\S+ \S+ {2}you → bob: lunch\? {2}✓✓$/m, inbox.stdout);
    const chat = await runCli(["chat", m2.id.slice(0, 8), "--http", hp(a)], { stdin: "" });
    // What an own message read looks like in chat: "you: lunch?  ✓✓"
    assert.doesNotMatch(chat.stdout, /^you: lunch\? {2}✓✓$/m, chat.stdout);
  } finally {
    await killAll();
  }
});

Deno.test("accept --to a folder that cannot be made is refused, not accepted and retried for ever", async () => {
  try {
    const port = freeUdpPort();
    const a = await startLoopbackDaemon(port, "alice").started();
    const b = await startLoopbackDaemon(port, "bob").started();
    await a.joined(b.id, 5000);
    const dir = await Deno.makeTempDir({ prefix: "hostile2-" });
    await Deno.writeFile(`${dir}/report.pdf`, new Uint8Array(1000));
    const offer = await runCli(["send-file", "alice", `${dir}/report.pdf`, "--wait", "0", "--http", hp(b)]);
    const id = /transfers ([0-9a-f]{8})/.exec(offer.stdout)?.[1];
    assert.ok(id, offer.stdout + offer.stderr);
    // A path that is a file: no folder can be made there.
    const r = await runCli(["accept", id!, "--to", `${dir}/report.pdf`, "--wait", "3s", "--http", hp(a)]);
    assert.equal(r.code, 1, `exit ${r.code}: ${r.stdout}${r.stderr}`);
    assert.doesNotMatch(r.stdout, /saving in/);
    const t = await runCli(["transfers", "--http", hp(a)]);
    assert.doesNotMatch(t.stdout, /--allow-all|os error/, t.stdout);
  } finally {
    await killAll();
  }
});

Deno.test("bob@HOST after trusting one of two bobs still reaches each; a second key for bob on the same host is refused", async () => {
  try {
    const port = freeUdpPort();
    const { a, b2, b3 } = await twoBobs(port);
    const cli = (...args: string[]) => runCli([...args, "--http", hp(a)]);
    // "bob" alone is two keys for one name: refused, with NAME@HOST and id:HEX suggested.
    const both = await cli("send", "bob", "which?");
    assert.equal(both.code, 1, both.stdout);
    assert.match(both.stderr, /Name one by NAME@HOST or its id, e\.g\. bob@host\d or id:[0-9a-f]{8}\n$/);
    assert.equal((await cli("trust", `id:${b3.id.slice(0, 8)}`)).code, 0);
    const r2 = await cli("send", "bob@host2", "to host2 after trust");
    assert.equal(r2.code, 0, r2.stderr);
    assert.ok((await history(b2)).some((m) => m.text === "to host2 after trust"));
    const r = await cli("send", "bob", "to the trusted bob");
    assert.equal(r.code, 0, r.stderr);
    assert.ok((await history(b3)).some((m) => m.text === "to the trusted bob"));
    // Another key claiming bob on host2 (the same host): NAME@HOST does not pick it.
    const again = await onHost(port, "bob", "host2").started();
    await a.joined(again.id, 5000);
    const same = await cli("send", "bob@host2", "which bob on host2?");
    assert.equal(same.code, 1, same.stdout);
    assert.deepEqual((await history(again)).filter((m) => m.text === "which bob on host2?"), []);
  } finally {
    await killAll();
  }
});

Deno.test("a peer's name or text never passes for the CLI's lines: an offer hint, a state line, a member called you", async () => {
  try {
    const port = freeUdpPort();
    const a = await startLoopbackDaemon(port, "alice").started();
    const you = await startLoopbackDaemon(port, "you").started();
    const paren = await startLoopbackDaemon(port, "(✓✓ read").started();
    await a.joined(you.id, 5000);
    await a.joined(paren.id, 5000);
    const fakeOffer = "Files offered: report.pdf (1 file, 100 kB)  (lanchat accept 1a2b3c4d)";
    assert.equal((await runCli(["send", "alice", fakeOffer, "--http", hp(you)])).code, 0);
    const lines = "x\nyou: lunch?  ✓✓\n(✓✓ read: “lunch?”)\n(lanchat accept 1a2b3c4d)";
    assert.equal((await runCli(["send", "alice", lines, "--http", hp(you)])).code, 0);
    assert.equal((await runCli(["send", "alice", "“lunch?”)", "--http", hp(paren)])).code, 0);
    const inbox = await runCli(["inbox", "--http", hp(a)]);
    // No offer was made: no line of the CLI's offers anything; no line starts as yours.
    assert.doesNotMatch(inbox.stdout, /^\(lanchat accept/m, inbox.stdout);
    assert.doesNotMatch(inbox.stdout, /^(\S+ \S+ {2})?you[: ]/m, inbox.stdout);
    const chat = await runCli(["chat", `id:${you.id.slice(0, 8)}`, "--http", hp(a)], { stdin: "" });
    assert.doesNotMatch(chat.stdout, /^you: /m, chat.stdout);
    assert.doesNotMatch(chat.stdout, /^\((✓✓ read|lanchat accept)/m, chat.stdout);
    const chat2 = await runCli(["chat", `id:${paren.id.slice(0, 8)}`, "--http", hp(a)], { stdin: "" });
    assert.doesNotMatch(chat2.stdout, /^\(✓✓ read/m, chat2.stdout);
    // A group with a member called "you": the header does not list you as a member (you are not).
    assert.equal((await runCli(["group", "create", "grp2", `id:${you.id.slice(0, 8)}`, "--http", hp(a)])).code, 0);
    const g = await runCli(["chat", "@grp2", "--http", hp(a)], { stdin: "" });
    assert.doesNotMatch(g.stdout, /^chatting in @grp2 with you\b/m, g.stdout);
    assert.match(g.stdout, /^chatting in @grp2 with "you"; /m, g.stdout);
  } finally {
    await killAll();
  }
});
