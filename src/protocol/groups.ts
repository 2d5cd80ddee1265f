/**
 * Group conversations: a named set of members (node ids) with a group id.
 * Pure: the membership rules and the line a group message carries.
 *
 * A group message is an ordinary message to each member (messaging's
 * per-peer ack, order and outbox) whose text ends with a machine line,
 * `\u0001lanchat-group {json}`, naming the group and carrying the sender's
 * whole view of its membership. Every member merges what it receives into
 * its own view, so a member who missed a change (offline, or added later)
 * learns it from the next group message that reaches it.
 *
 * Membership is a set of entries, one per node that was ever a member:
 * `in` or `out`, stamped `(clock, author)` by the change that set it (a
 * Lamport clock per group: a change is stamped one past the highest clock
 * its author has seen). Merging keeps, per node, the entry with the higher
 * stamp; the clock first, then the author's id. That is the rule for two
 * members changing the list at once: changes to different nodes all take
 * effect; two changes to the same node (one adds Dave while Dave's own
 * leave is still on its way) are settled the same way on every member by
 * their stamps. The merge is commutative, associative and idempotent, so
 * every member that has received the same changes, in any order, has the
 * same list.
 *
 * @module
 */
import { NODE_ID_PATTERN, textFieldProblem } from "../wire/packets.ts";
import { MACHINE_LINE } from "./machine_line.ts";
import { nameKey } from "../common/name_key.ts";

/** Marks the line of a message that says which group it belongs to. */
export const GROUP_MARK = `${MACHINE_LINE}group `;

/** Most members a group may have (every group message carries the list). */
export const MAX_GROUP_MEMBERS = 64;
/** Most entries (nodes ever a member, in or out) a group keeps: what a hostile member can make it hold. */
export const MAX_GROUP_ENTRIES = MAX_GROUP_MEMBERS * 4;

/** One node's membership: in or out, and the stamp of the change that made it so. */
export interface MemberEntry {
  in: boolean;
  clock: number;
  author: string;
}

/** A group as one member sees it. */
export interface GroupState {
  /** 32 hex digits, chosen at random by its creator. */
  id: string;
  name: string;
  /** Every node that was ever a member, by node id. */
  members: Map<string, MemberEntry>;
}

/** What a membership message says happened (absent on ordinary group messages). */
export type GroupChange =
  | { op: "create"; by: string; members: string[] }
  | { op: "add"; by: string; members: string[] }
  | { op: "leave"; by: string };

/** What the group line of a message carries. */
export interface GroupLine {
  group: GroupState;
  change?: GroupChange;
  /**
   * The id of the message as written to the group (key `i`): every member's
   * copy has an id of its own, and this one names the message for all of
   * them (a reply in the group names it so).
   */
  message?: string;
}

/** True when `a` is a newer stamp than `b`. */
function newer(a: MemberEntry, b: MemberEntry): boolean {
  return a.clock !== b.clock ? a.clock > b.clock : a.author > b.author;
}

/** The highest clock in a group's entries. */
export function groupClock(g: GroupState): number {
  let c = 0;
  for (const e of g.members.values()) c = Math.max(c, e.clock);
  return c;
}

/** The nodes that are members now. */
export function currentMembers(g: GroupState): string[] {
  return [...g.members].filter(([, e]) => e.in).map(([id]) => id).sort();
}

/** Whether `id` is a member now. */
export function isMember(g: GroupState, id: string): boolean {
  return g.members.get(id)?.in === true;
}

/**
 * Merges `incoming` into `mine`, entry by entry (the newer stamp wins); new
 * nodes past {@link MAX_GROUP_ENTRIES} are left out. Returns whether `mine`
 * changed.
 */
export function mergeGroup(mine: GroupState, incoming: GroupState): boolean {
  let changed = false;
  for (const [id, e] of incoming.members) {
    const have = mine.members.get(id);
    if (!have && mine.members.size >= MAX_GROUP_ENTRIES) continue;
    if (!have || newer(e, have)) {
      mine.members.set(id, { ...e });
      changed = true;
    }
  }
  return changed;
}

/** A new group: its creator and `members`, all in, stamped 1 by the creator. */
export function createGroup(id: string, name: string, creator: string, members: string[]): GroupState {
  const g: GroupState = { id, name, members: new Map() };
  for (const m of new Set([creator, ...members])) g.members.set(m, { in: true, clock: 1, author: creator });
  return g;
}

/** `by` adds `members` (one change: one stamp). Returns the nodes that were not members before. */
export function addMembers(g: GroupState, by: string, members: string[]): string[] {
  const fresh = [...new Set(members)].filter((m) => !isMember(g, m));
  const clock = groupClock(g) + 1;
  for (const m of fresh) g.members.set(m, { in: true, clock, author: by });
  return fresh;
}

/** `by` leaves the group. */
export function leaveGroup(g: GroupState, by: string): void {
  g.members.set(by, { in: false, clock: groupClock(g) + 1, author: by });
}

/** What is wrong with a group name, or undefined (the rule for node names: 1 to 64 bytes, no control characters). */
export function groupNameProblem(name: string): string | undefined {
  const p = textFieldProblem(name, 1);
  if (p) return `A group name ${p}`;
  if (name.trim() !== name) return "A group name must not start or end with spaces";
  return undefined;
}

/**
 * What is wrong with `name` for a group made here, or undefined: as
 * {@link groupNameProblem}, and it must not start with `@` (that is how a
 * group is written: `@lab` would be shown `@@lab`, and `send @lab` would
 * name the other). A group a peer made is taken as the wire allows.
 */
export function newGroupNameProblem(name: string): string | undefined {
  return groupNameProblem(name) ??
    (name.startsWith("@") ? 'A group name cannot start with "@" (that is how a group is written)' : undefined);
}

/**
 * A group name as compared for a clash: names that read alike are one
 * name (`lab`, `Lab`, `ｌａｂ`, `la\u200Bb`): {@link nameKey} (invisible
 * characters removed, NFKC) and case ignored, as `@NAME` is looked up.
 */
export function groupNameKey(name: string): string {
  return nameKey(name).toLowerCase();
}

/**
 * Creating a group of a name this node is already in a group of (by
 * {@link groupNameKey}): refused unless asked for on purpose, since
 * `@NAME` would then name two groups.
 */
export class GroupNameTakenError extends Error {
  override name = "GroupNameTakenError";
  /** `groupId`: the group this node is in that has the name. */
  constructor(readonly groupId: string, readonly existing: string) {
    super(`You are already in a group named “${existing}”: write to it, add people to it, or choose another name`);
  }
}

/** A copy of a group that can be changed without changing the original. */
export function cloneGroup(g: GroupState): GroupState {
  return { id: g.id, name: g.name, members: new Map([...g.members].map(([id, e]) => [id, { ...e }])) };
}

/**
 * A group as JSON: `{g: ID, n: NAME, m: [[NODE, IN (1|0), CLOCK, AUTHOR], …]}`,
 * the form its group line carries and the one it is saved in.
 */
export function encodeGroup(g: GroupState): { g: string; n: string; m: [string, number, number, string][] } {
  return { g: g.id, n: g.name, m: [...g.members].map(([id, e]) => [id, e.in ? 1 : 0, e.clock, e.author]) };
}

/** A group from {@link encodeGroup}'s JSON, checked field by field; undefined when anything is wrong. */
export function decodeGroup(v: unknown): GroupState | undefined {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return undefined;
  const o = v as Record<string, unknown>;
  if (!isId(o.g) || typeof o.n !== "string" || groupNameProblem(o.n)) return undefined;
  if (!Array.isArray(o.m) || o.m.length === 0 || o.m.length > MAX_GROUP_ENTRIES) return undefined;
  const members = new Map<string, MemberEntry>();
  for (const e of o.m) {
    if (!Array.isArray(e) || e.length !== 4) return undefined;
    const [id, inn, clock, author] = e;
    if (!isId(id) || (inn !== 0 && inn !== 1) || !isClock(clock) || !isId(author)) return undefined;
    members.set(id, { in: inn === 1, clock, author });
  }
  return { id: o.g, name: o.n, members };
}

/** A message's text with its group line appended. */
export function withGroupLine(text: string, line: GroupLine): string {
  const v: Record<string, unknown> = encodeGroup(line.group);
  if (line.change) {
    v.op = line.change.op;
    v.by = line.change.by;
    if (line.change.op !== "leave") v.who = line.change.members;
  }
  if (line.message) v.i = line.message;
  return `${text}\n${GROUP_MARK}${JSON.stringify(v)}`;
}

const isId = (v: unknown): v is string => typeof v === "string" && NODE_ID_PATTERN.test(v);
const isClock = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/**
 * The group line of a message, checked field by field; undefined when it
 * has none or it is malformed (then the message is an ordinary one, shown
 * as it came).
 */
export function parseGroupLine(text: string): GroupLine | undefined {
  const at = text.lastIndexOf(`\n${GROUP_MARK}`);
  if (at < 0) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(text.slice(at + 1 + GROUP_MARK.length));
  } catch {
    return undefined;
  }
  const group = decodeGroup(v);
  if (!group) return undefined;
  const o = v as Record<string, unknown>;
  const line: GroupLine = { group };
  // A malformed message id is left out: the message still belongs to its group.
  if (isId(o.i)) line.message = o.i;
  if (o.op !== undefined) {
    if (!isId(o.by)) return undefined;
    if (o.op === "leave") line.change = { op: "leave", by: o.by };
    else if ((o.op === "create" || o.op === "add") && Array.isArray(o.who) && o.who.every(isId)) {
      line.change = { op: o.op, by: o.by, members: o.who as string[] };
    } else return undefined;
  }
  return line;
}

/** The id of the group a message belongs to, if its text carries a valid group line. */
export function groupIdOf(text: string): string | undefined {
  return text.includes(GROUP_MARK) ? parseGroupLine(text)?.group.id : undefined;
}

/** The text a person reads: the group line taken out. */
export function withoutGroupLine(text: string): string {
  const at = text.lastIndexOf(`\n${GROUP_MARK}`);
  return at < 0 ? text : text.slice(0, at);
}

/** What an IP Messenger member receives: the text, the group's name before it (that protocol has no groups). */
export function plainGroupText(name: string, text: string): string {
  return `[${name}] ${text}`;
}
