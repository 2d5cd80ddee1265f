/**
 * The membership rules of group conversations (protocol/groups.ts): changes
 * made at once converge in any order, a member that missed a change learns
 * it from any later message, and the group line of a message is checked
 * field by field.
 */
import assert from "node:assert/strict";
import {
  addMembers,
  createGroup,
  currentMembers,
  GROUP_MARK,
  type GroupState,
  isMember,
  leaveGroup,
  MAX_GROUP_MEMBERS,
  mergeGroup,
  parseGroupLine,
  withGroupLine,
  withoutGroupLine,
} from "../../src/protocol/groups.ts";

const id = (c: string) => c.repeat(32);
const [A, B, C, D, E] = ["a", "b", "c", "d", "e"].map(id) as [string, string, string, string, string];
const GID = id("9");

function clone(g: GroupState): GroupState {
  return { ...g, members: new Map([...g.members].map(([k, v]) => [k, { ...v }])) };
}

/** Every order of a list. */
function orders<T>(xs: T[]): T[][] {
  if (xs.length <= 1) return [xs];
  return xs.flatMap((x, i) => orders([...xs.slice(0, i), ...xs.slice(i + 1)]).map((rest) => [x, ...rest]));
}

Deno.test("three members changing the list at once (two adds and a leave) converge on one list, in any order of arrival", () => {
  const start = createGroup(GID, "lab", A, [B, C]);
  // Each member changes its own copy without having seen the others' changes.
  const byA = clone(start);
  addMembers(byA, A, [D]);
  const byB = clone(start);
  addMembers(byB, B, [E]);
  const byC = clone(start);
  leaveGroup(byC, C);
  const results = new Set<string>();
  for (const order of orders([byA, byB, byC])) {
    const at = clone(start);
    for (const change of order) mergeGroup(at, change);
    results.add(JSON.stringify([...at.members].sort()));
    assert.deepEqual(currentMembers(at), [A, B, D, E].sort());
  }
  assert.equal(results.size, 1, "the same entries whatever the order");
});

Deno.test("two changes to the same member at once are settled by their stamps, the same way on every member", () => {
  // Two entries for D with one clock, made by members that had not seen each other's: the higher author id wins.
  const base = createGroup(GID, "lab", A, [B, D]);
  const out = clone(base);
  out.members.set(D, { in: false, clock: 3, author: B });
  const back = clone(base);
  back.members.set(D, { in: true, clock: 3, author: A });
  const one = clone(base);
  mergeGroup(one, out);
  mergeGroup(one, back);
  const two = clone(base);
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
  const atC = clone(start);
  const atA = clone(start);
  addMembers(atA, A, [D]);
  const atB = clone(start);
  mergeGroup(atB, atA);
  // C missed A's change; B writes to the group next: B's message carries B's whole view.
  const line = parseGroupLine(withGroupLine("hi", { group: atB }))!;
  assert.equal(mergeGroup(atC, line.group), true);
  assert.deepEqual(currentMembers(atC), currentMembers(atA));
  assert.equal(mergeGroup(atC, line.group), false, "merging twice changes nothing");
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
