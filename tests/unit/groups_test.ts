/**
 * The membership rules of group conversations (protocol/groups.ts): changes
 * made at once converge in any order, a member that missed a change learns
 * it from any later message, and the group line of a message is checked
 * field by field.
 */
import assert from "node:assert/strict";
import {
  addMembers,
  cloneGroup,
  createGroup,
  currentMembers,
  GROUP_MARK,
  type GroupState,
  isMember,
  leaveGroup,
  MAX_GROUP_ENTRIES,
  MAX_GROUP_MEMBERS,
  mergeGroup,
  parseGroupLine,
  withGroupLine,
  withoutGroupLine,
} from "../../src/protocol/groups.ts";
import { Daemon } from "../../src/node/daemon.ts";
import { fakeHost } from "../support/fake_host.ts";
import { FakeNetwork } from "../../src/node/transport.ts";
import { MAX_GROUPS } from "../../src/node/services/groups.ts";

const id = (c: string) => c.repeat(32);
const [A, B, C, D, E] = ["a", "b", "c", "d", "e"].map(id) as [string, string, string, string, string];
const GID = id("9");

/** Every order of a list. */
function orders<T>(xs: T[]): T[][] {
  if (xs.length <= 1) return [xs];
  return xs.flatMap((x, i) => orders([...xs.slice(0, i), ...xs.slice(i + 1)]).map((rest) => [x, ...rest]));
}

Deno.test("three members changing the list at once (two adds and a leave) converge on one list, in any order of arrival", () => {
  const start = createGroup(GID, "lab", A, [B, C]);
  // Each member changes its own copy without having seen the others' changes.
  const byA = cloneGroup(start);
  addMembers(byA, A, [D]);
  const byB = cloneGroup(start);
  addMembers(byB, B, [E]);
  const byC = cloneGroup(start);
  leaveGroup(byC, C);
  const results = new Set<string>();
  for (const order of orders([byA, byB, byC])) {
    const at = cloneGroup(start);
    for (const change of order) mergeGroup(at, change);
    results.add(JSON.stringify([...at.members].sort()));
    assert.deepEqual(currentMembers(at), [A, B, D, E].sort());
  }
  assert.equal(results.size, 1, "the same entries whatever the order");
});

Deno.test("two changes to the same member at once are settled by their stamps, the same way on every member", () => {
  // Two entries for D with one clock, made by members that had not seen each other's: the higher author id wins.
  const base = createGroup(GID, "lab", A, [B, D]);
  const out = cloneGroup(base);
  out.members.set(D, { in: false, clock: 3, author: B });
  const back = cloneGroup(base);
  back.members.set(D, { in: true, clock: 3, author: A });
  const one = cloneGroup(base);
  mergeGroup(one, out);
  mergeGroup(one, back);
  const two = cloneGroup(base);
  mergeGroup(two, back);
  mergeGroup(two, out);
  assert.equal(isMember(one, D), false, "b's stamp (3, b…) is above a's (3, a…)");
  assert.deepEqual([...one.members], [...two.members]);
  // A later change beats both.
  addMembers(one, A, [D]);
  mergeGroup(two, one);
  assert.equal(isMember(two, D), true);
});

Deno.test("a member offline during a change learns it from the next group message it gets, from any member", () => {
  const start = createGroup(GID, "lab", A, [B, C]);
  const atC = cloneGroup(start);
  const atA = cloneGroup(start);
  addMembers(atA, A, [D]);
  const atB = cloneGroup(start);
  mergeGroup(atB, atA);
  // C missed A's change; B writes to the group next: B's message carries B's whole view.
  const line = parseGroupLine(withGroupLine("hi", { group: atB }))!;
  assert.equal(mergeGroup(atC, line.group), true);
  assert.deepEqual(currentMembers(atC), currentMembers(atA));
  assert.equal(mergeGroup(atC, line.group), false, "merging twice changes nothing");
});

Deno.test("a group keeps at most MAX_GROUP_ENTRIES nodes, however many merges bring new ones", () => {
  const g = createGroup(GID, "lab", A, [B]);
  for (let round = 0; round < 3; round++) {
    const big: GroupState = { id: GID, name: "lab", members: new Map() };
    for (let i = 0; i < 200; i++) {
      big.members.set(`${round}${i.toString(16).padStart(31, "0")}`, { in: true, clock: 5, author: A });
    }
    mergeGroup(g, big);
  }
  assert.equal(g.members.size, MAX_GROUP_ENTRIES);
  assert.ok(isMember(g, A) && isMember(g, B), "the first members are kept");
});

Deno.test("a group line survives the round trip and is taken out of the text a person reads", () => {
  const g = createGroup(GID, "Lab 3 ☕ 实验室", A, [B]);
  leaveGroup(g, B);
  const text = withGroupLine("first line\nsecond", { group: g, change: { op: "leave", by: B } });
  const back = parseGroupLine(text)!;
  assert.equal(back.group.name, "Lab 3 ☕ 实验室");
  assert.deepEqual([...back.group.members], [...g.members]);
  assert.deepEqual(back.change, { op: "leave", by: B });
  assert.equal(withoutGroupLine(text), "first line\nsecond");
  assert.equal(withoutGroupLine("plain"), "plain");
});

Deno.test("a malformed group line makes an ordinary message, never a group (hostile peers)", () => {
  const ok = JSON.parse(withGroupLine("x", { group: createGroup(GID, "lab", A, [B]) }).split(GROUP_MARK)[1]!);
  const line = (v: unknown) => `x\n${GROUP_MARK}${typeof v === "string" ? v : JSON.stringify(v)}`;
  assert.ok(parseGroupLine(line(ok)));
  const bad: unknown[] = [
    "{not json",
    "[]",
    { ...ok, g: "xyz" },
    { ...ok, n: "" },
    { ...ok, n: "evil\u001b[2Jname" },
    { ...ok, n: "x".repeat(65) },
    { ...ok, m: [] },
    { ...ok, m: [[A, 1, 1]] },
    { ...ok, m: [[A, 2, 1, A]] },
    { ...ok, m: [[A, 1, -1, A]] },
    { ...ok, m: [[A, 1, 1.5, A]] },
    { ...ok, m: [["../../etc", 1, 1, A]] },
    { ...ok, m: Array.from({ length: MAX_GROUP_MEMBERS * 4 + 1 }, () => [A, 1, 1, A]) },
    { ...ok, op: "kick", by: A },
    { ...ok, op: "add", by: A, who: ["nobody"] },
    { ...ok, op: "leave" },
  ];
  for (const v of bad) assert.equal(parseGroupLine(line(v)), undefined, JSON.stringify(v).slice(0, 80));
});

Deno.test("a peer cannot grow a node's groups without bound, nor change a group it is not in; its messages are kept", async () => {
  const net = new FakeNetwork();
  const opts = { http: null, intervalMs: 200, discoveryPort: 47474, unicastPort: 47475 } as const;
  const a = await Daemon.start({ ...opts, dataDir: Deno.makeTempDirSync() }, fakeHost(net, "198.18.0.1"));
  const m = await Daemon.start({ ...opts, dataDir: Deno.makeTempDirSync() }, fakeHost(net, "198.18.0.2"));
  try {
    const deadline = Date.now() + 5000;
    while (a.discovery.roster.size === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const [aId, mId] = [a.discovery.self.id, m.discovery.self.id];
    // Mallory writes lines by hand (the API refuses them from a person; a hostile daemon can send anything).
    const groupId = (i: number) => `e${i.toString(16).padStart(31, "0")}`;
    const items = Array.from({ length: MAX_GROUPS + 5 }, (_, i) => ({
      to: aId,
      text: withGroupLine(`spam ${i}`, { group: createGroup(groupId(i), `g${i}`, mId, [aId]) }),
    }));
    // A group mallory is not in, said to have no one in it any more.
    const stranger = createGroup(id("7"), "theirs", A, [B]);
    for (const e of stranger.members.values()) Object.assign(e, { in: false, clock: 99 });
    items.push({ to: aId, text: withGroupLine("you are all out", { group: stranger }) });
    await m.parts.conversations.sendMessages(items);
    await new Promise((r) => setTimeout(r, 50));
    await a.parts.groups.create("real", [B]).catch(() => {}); // alice's own group (B is offline: queued)
    const realId = a.parts.groups.list().find((g) => g.name === "real")!.id;
    await m.parts.conversations.sendMessage(
      aId,
      withGroupLine("you are all out", {
        group: { id: realId, name: "real", members: new Map([[aId, { in: false, clock: 99, author: mId }]]) },
      }),
    );
    // Every group message is handled once its commit is done (history shows it before: same connection):
    // wait until each made a group or was refused. Mallory's 1,005 + 2, and alice's own group.
    const status = () => a.parts.groups.status() as { groups: number; groupMessagesRefused: number };
    while (a.parts.groups.list().length + status().groupMessagesRefused < MAX_GROUPS + 8) {
      if (Date.now() > deadline + 30_000) {
        throw new Error(`mallory's messages did not all arrive: ${JSON.stringify(status())}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    // The bound is on groups learnt from others (alice's own, made before or after the flood, is always hers).
    const learnt = a.parts.groups.list().filter((g) => g.id !== realId).length;
    assert.ok(learnt >= MAX_GROUPS - 1 && learnt <= MAX_GROUPS, `${learnt} groups learnt from mallory`);
    // Past the cap (5 or more), the stranger's group, and the forged change to alice's.
    assert.ok(status().groupMessagesRefused >= 7, JSON.stringify(status()));
    assert.equal(a.parts.groups.list().find((g) => g.id === realId)?.left, undefined, "alice is still in her group");
  } finally {
    await m.stop();
    await a.stop();
  }
});
