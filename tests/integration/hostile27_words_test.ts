/**
 * Hostile tests of issue 27 items 5-7 (hostile2, M2, M3, L1-L3): each of
 * these failed on main at 5bb68ce. Loopback only.
 */
import assert from "node:assert/strict";
import type { MessageJson } from "../../src/api/types.ts";
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

Deno.test("reading one conversation does not mark another read (✓✓ only for what the peer was shown)", async () => {
  try {
    const port = freeUdpPort();
    const a = await startLoopbackDaemon(port, "alice").started();
    const b = await startLoopbackDaemon(port, "bob").started();
    await a.joined(b.id, 5000);
    const cli = (d: DaemonProcess, ...args: string[]) => runCli([...args, "--http", hp(d)]);
    assert.equal((await cli(a, "group", "create", "lab", "bob")).code, 0);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal((await cli(b, "inbox", "--group", "lab")).code, 0); // bob has read the group so far
    // Bob is sent a group message he does not look at, then a direct one he reads.
    assert.equal((await cli(a, "send", "@lab", "group: not shown to bob")).code, 0);
    assert.equal((await cli(a, "send", "bob", "direct: shown")).code, 0);
    const shown = await cli(b, "inbox", "--peer", "alice");
    assert.doesNotMatch(shown.stdout, /not shown to bob/);
    await new Promise((r) => setTimeout(r, 2000));
    const mine = (await history(a)).find((m) => m.text === "group: not shown to bob")!;
    assert.equal(mine.readAt, undefined, "alice's group message is marked read by bob, who never saw it");
    const lab = await cli(a, "inbox", "--group", "lab");
    assert.doesNotMatch(lab.stdout, /not shown to bob {2}✓✓/, lab.stdout);
  } finally {
    await killAll();
  }
});

Deno.test("reading a group does not mark the direct conversation read, nor another group", async () => {
  try {
    const port = freeUdpPort();
    const a = await startLoopbackDaemon(port, "alice").started();
    const b = await startLoopbackDaemon(port, "bob").started();
    await a.joined(b.id, 5000);
    const cli = (d: DaemonProcess, ...args: string[]) => runCli([...args, "--http", hp(d)]);
    assert.equal((await cli(a, "group", "create", "lab", "bob")).code, 0);
    assert.equal((await cli(a, "group", "create", "ops", "bob")).code, 0);
    await new Promise((r) => setTimeout(r, 500));
    // Bob is sent a direct message and one in ops he does not look at, then one in lab he reads.
    assert.equal((await cli(a, "send", "bob", "direct: not shown to bob")).code, 0);
    assert.equal((await cli(a, "send", "@ops", "ops: not shown to bob")).code, 0);
    assert.equal((await cli(a, "send", "@lab", "lab: shown")).code, 0);
    const shown = await cli(b, "inbox", "--group", "lab");
    assert.match(shown.stdout, /lab: shown/);
    assert.doesNotMatch(shown.stdout, /not shown to bob/);
    // The lab message is read (the receipt came), the others are not.
    let mine: MessageJson[] = [];
    for (let i = 0; i < 50; i++) {
      mine = await history(a);
      if (mine.find((m) => m.text === "lab: shown")?.readAt !== undefined) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.notEqual(mine.find((m) => m.text === "lab: shown")?.readAt, undefined, "the message bob read");
    assert.equal(mine.find((m) => m.text === "direct: not shown to bob")?.readAt, undefined, "direct");
    assert.equal(mine.find((m) => m.text === "ops: not shown to bob")?.readAt, undefined, "ops");
    // Bob's own copies of what he was not shown stay unread.
    const his = await history(b);
    assert.equal(his.find((m) => m.text === "direct: not shown to bob")?.readAt, undefined, "bob's direct copy");
    assert.equal(his.find((m) => m.text === "ops: not shown to bob")?.readAt, undefined, "bob's ops copy");
  } finally {
    await killAll();
  }
});
