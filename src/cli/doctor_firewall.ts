/**
 * Firewall rules that may drop lanchat's traffic, for `lanchat doctor`: read
 * from `nft -j list ruleset` (nftables, which also shows iptables-nft's
 * rules), else from `iptables-save`/`ip6tables-save` text. A best effort, not
 * a firewall simulator: a rule that drops or rejects and whose conditions
 * could match one of our ports (a port match that includes it, or none at
 * all) is named; sets by name, marks and the order of rules are not
 * followed. Only chains this host's own traffic goes through count: a base
 * chain on the forward hook (routed packets: a Docker host's `FORWARD`
 * policy drop) and the chains jumped to from such chains only are left out;
 * a chain no base chain jumps to (a verdict map's, say) still counts. Pure:
 * the text comes in, the rules that match go out.
 *
 * @module
 */

/** One of lanchat's ports. */
export interface OurPort {
  proto: "udp" | "tcp";
  port: number;
  /** What it is for: discovery, unicast, file, http. */
  role: string;
}

/** A rule that may drop some of our traffic. */
export interface FirewallHit {
  /** Where it is and what it says, e.g. `nftables inet filter input (handle 3): udp dport 47474 drop`. */
  rule: string;
  /** Our ports it names explicitly (empty: it names no port, so it drops everything its other conditions match). */
  ports: OurPort[];
  /** A chain whose policy drops what no rule accepts (and no accept rule for our ports was seen). */
  policy?: boolean;
}

type Json = Record<string, unknown>;

/** Hooks of base chains that see this host's own datagrams (not `forward`: routed packets only). */
const OWN_HOOKS = ["prerouting", "input", "output", "postrouting", "ingress", "egress"];

/**
 * Which chains count, from the base chains (true: it sees our traffic) and
 * the jumps between chains: one reached from a base chain that sees our
 * traffic, or from no base chain at all (reached in a way not followed).
 */
function chainsThatCount(bases: Map<string, boolean>, jumps: Map<string, Set<string>>): (chain: string) => boolean {
  const reach = (from: string[]) => {
    const seen = new Set(from);
    const todo = [...from];
    for (let c = todo.pop(); c !== undefined; c = todo.pop()) {
      for (const next of jumps.get(c) ?? []) {
        if (!seen.has(next)) {
          seen.add(next);
          todo.push(next);
        }
      }
    }
    return seen;
  };
  const own = reach([...bases].filter(([, sees]) => sees).map(([c]) => c));
  const any = reach([...bases.keys()]);
  return (chain) => own.has(chain) || !any.has(chain);
}

/** Rules of `nft -j list ruleset` output that may drop our traffic. */
export function nftHits(text: string, ours: readonly OurPort[]): FirewallHit[] {
  let doc: { nftables?: Json[] };
  try {
    doc = JSON.parse(text);
  } catch {
    return [];
  }
  const items = Array.isArray(doc?.nftables) ? doc.nftables : [];
  const chains = new Map<string, Json>();
  const hits: FirewallHit[] = [];
  const accepted = new Map<string, Set<OurPort>>();
  const bases = new Map<string, boolean>();
  const jumps = new Map<string, Set<string>>();
  for (const item of items) {
    const c = item.chain as Json | undefined;
    if (c?.hook !== undefined) bases.set(`${c.family} ${c.table} ${c.name}`, OWN_HOOKS.includes(String(c.hook)));
    const r = item.rule as Json | undefined;
    if (!r || !Array.isArray(r.expr)) continue;
    for (const e of r.expr as Json[]) {
      const to = ((e.jump ?? e.goto) as { target?: unknown } | undefined)?.target;
      if (typeof to !== "string") continue;
      const from = `${r.family} ${r.table} ${r.chain}`;
      jumps.set(from, (jumps.get(from) ?? new Set()).add(`${r.family} ${r.table} ${to}`));
    }
  }
  const counts = chainsThatCount(bases, jumps);
  for (const item of items) {
    const c = item.chain as Json | undefined;
    if (c) chains.set(`${c.family} ${c.table} ${c.name}`, c);
    const r = item.rule as Json | undefined;
    if (!r || !Array.isArray(r.expr)) continue;
    const where = `${r.family} ${r.table} ${r.chain}`;
    if (!counts(where)) continue;
    const exprs = r.expr as Json[];
    const verdict = exprs.find((e) => "drop" in e || "reject" in e || "accept" in e);
    if (!verdict) continue;
    const cond = nftConditions(exprs);
    if (cond.connState) continue; // `ct state invalid drop` and the like: not lanchat's datagrams
    const matched = ours.filter((p) => cond.protoOk(p.proto) && cond.portOk(p.port));
    if (matched.length === 0) continue;
    if ("accept" in verdict) {
      if (cond.ports) {
        const set = accepted.get(where) ?? new Set();
        for (const p of matched) set.add(p);
        accepted.set(where, set);
      }
      continue;
    }
    hits.push({
      rule: `nftables ${where} (handle ${r.handle}): ${exprs.map(nftText).filter(Boolean).join(" ")}`,
      ports: cond.ports ? matched : [],
    });
  }
  for (const [where, c] of chains) {
    if (c.policy !== "drop" || !OWN_HOOKS.includes(String(c.hook))) continue;
    const open = accepted.get(where);
    const closed = ours.filter((p) => !open?.has(p));
    if (closed.length === 0) continue;
    hits.push({ rule: `nftables ${where}: hook ${c.hook}, policy drop`, ports: closed, policy: true });
  }
  return hits;
}

/** What a rule's matches say about protocol and port. */
function nftConditions(exprs: Json[]): {
  protoOk(p: string): boolean;
  portOk(n: number): boolean;
  ports: boolean;
  connState: boolean;
} {
  let connState = false;
  let protos: Set<string> | undefined;
  const portTests: ((n: number) => boolean)[] = [];
  for (const e of exprs) {
    const m = e.match as { op?: string; left?: Json; right?: unknown } | undefined;
    if (!m?.left) continue;
    const payload = m.left.payload as { protocol?: string; field?: string } | undefined;
    const meta = m.left.meta as { key?: string } | undefined;
    const negate = m.op === "!=";
    if ((m.left.ct as { key?: string } | undefined)?.key === "state") connState = true;
    if (payload && (payload.protocol === "udp" || payload.protocol === "tcp" || payload.protocol === "th")) {
      if (payload.protocol !== "th") protos = new Set([payload.protocol]);
      if (payload.field === "dport" || payload.field === "sport") {
        const inSet = valueTest(m.right);
        portTests.push(negate ? (n) => !inSet(n) : inSet);
      }
    } else if (meta?.key === "l4proto" && typeof m.right === "string" && !negate) {
      protos = new Set([m.right]);
    } else if (meta?.key === "l4proto" && isSet(m.right) && !negate) {
      protos = new Set((m.right as { set: unknown[] }).set.map(String));
    }
  }
  return {
    protoOk: (p) => !protos || protos.has(p),
    portOk: (n) => portTests.every((t) => t(n)),
    ports: portTests.length > 0,
    connState,
  };
}

function isSet(v: unknown): boolean {
  return typeof v === "object" && v !== null && Array.isArray((v as Json).set);
}

/** Whether a port matches an nft right-hand side: a number, a range, a set of either. */
function valueTest(right: unknown): (n: number) => boolean {
  if (typeof right === "number") return (n) => n === right;
  if (typeof right === "string" && /^\d+$/.test(right)) return (n) => n === Number(right);
  if (typeof right === "object" && right !== null) {
    const r = right as Json;
    if (Array.isArray(r.range)) {
      const [lo, hi] = r.range.map(Number) as [number, number];
      return (n) => n >= lo && n <= hi;
    }
    if (Array.isArray(r.set)) {
      const tests = r.set.map(valueTest);
      return (n) => tests.some((t) => t(n));
    }
  }
  return () => true; // a named set or something not followed: could match
}

/** One nft expression as nft would print it, roughly. */
function nftText(e: Json): string {
  if ("match" in e) {
    const m = e.match as { op: string; left: Json; right: unknown };
    const op = m.op === "==" || m.op === "in" ? "" : `${m.op} `;
    return `${leftText(m.left)} ${op}${rightText(m.right)}`;
  }
  if ("counter" in e) return "counter";
  if ("drop" in e) return "drop";
  if ("accept" in e) return "accept";
  if ("reject" in e) return "reject";
  return Object.keys(e)[0] ?? "";
}

function leftText(l: Json): string {
  const p = l.payload as { protocol?: string; field?: string } | undefined;
  if (p) return `${p.protocol} ${p.field}`;
  const meta = l.meta as { key?: string } | undefined;
  if (meta) return `meta ${meta.key}`;
  const n = l.numgen as { mode?: string; mod?: number } | undefined;
  if (n) return `numgen ${n.mode} mod ${n.mod}`;
  const ct = l.ct as { key?: string } | undefined;
  if (ct) return `ct ${ct.key}`;
  return JSON.stringify(l);
}

function rightText(r: unknown): string {
  if (typeof r !== "object" || r === null) return String(r);
  const o = r as Json;
  if (Array.isArray(o.set)) return `{ ${o.set.map(rightText).join(", ")} }`;
  if (Array.isArray(o.range)) return `${o.range[0]}-${o.range[1]}`;
  const prefix = o.prefix as { addr?: string; len?: number } | undefined;
  if (prefix) return `${prefix.addr}/${prefix.len}`;
  return JSON.stringify(r);
}

/** Rules of `iptables-save` (or `ip6tables-save`) text that may drop our traffic. */
export function iptablesHits(text: string, ours: readonly OurPort[], tool = "iptables"): FirewallHit[] {
  const hits: FirewallHit[] = [];
  let table = "";
  const policies = new Map<string, string>();
  const accepted = new Map<string, Set<OurPort>>();
  const lines = text.split("\n").map((l) => l.trim());
  const counts = iptablesChainsThatCount(lines);
  for (const line of lines) {
    if (line.startsWith("*")) table = line.slice(1);
    const pol = /^:(\S+) (\S+)/.exec(line);
    if (pol) policies.set(`${table} ${pol[1]}`, pol[2]!);
    if (!line.startsWith("-A ")) continue;
    const t = line.split(/\s+/);
    const val = (flag: string) => {
      const i = t.indexOf(flag);
      return i >= 0 ? t[i + 1] : undefined;
    };
    const chain = t[1]!;
    if (!counts(`${table} ${chain}`)) continue;
    if (t.includes("--ctstate") || t.includes("--state")) continue; // connection state: not lanchat's datagrams
    const target = val("-j");
    if (!target || !["DROP", "REJECT", "ACCEPT"].includes(target)) continue;
    const proto = val("-p");
    const portSpecs = [val("--dport"), val("--dports"), val("--sport"), val("--sports")].filter((v) => v);
    const negated = t.some((w, i) => w === "!" && /^--[ds]ports?$/.test(t[i + 1] ?? ""));
    const portOk = (n: number) => portSpecs.every((s) => negated !== iptablesPorts(s!, n));
    const matched = ours.filter((p) => (!proto || proto === p.proto || proto === "all") && portOk(p.port));
    if (matched.length === 0) continue;
    if (target === "ACCEPT") {
      if (portSpecs.length) {
        const set = accepted.get(`${table} ${chain}`) ?? new Set();
        for (const p of matched) set.add(p);
        accepted.set(`${table} ${chain}`, set);
      }
      continue;
    }
    hits.push({ rule: `${tool} ${table}: ${line}`, ports: portSpecs.length ? matched : [] });
  }
  for (const [where, policy] of policies) {
    const chain = where.split(" ")[1]!;
    if (policy !== "DROP" || !IPTABLES_OWN.includes(chain)) continue;
    const open = accepted.get(where);
    const closed = ours.filter((p) => !open?.has(p));
    if (closed.length) hits.push({ rule: `${tool} ${where}: policy DROP`, ports: closed, policy: true });
  }
  return hits;
}

/** Built-in iptables chains that see this host's own datagrams (not FORWARD). */
const IPTABLES_OWN = ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"];

/** Which `table chain` of iptables-save lines count (see {@link chainsThatCount}). */
function iptablesChainsThatCount(lines: readonly string[]): (chain: string) => boolean {
  const bases = new Map<string, boolean>();
  const jumps = new Map<string, Set<string>>();
  let table = "";
  for (const line of lines) {
    if (line.startsWith("*")) table = line.slice(1);
    const declared = /^:(\S+) (\S+)/.exec(line);
    if (declared && declared[2] !== "-") bases.set(`${table} ${declared[1]}`, declared[1] !== "FORWARD");
    const jump = /^-A (\S+) .*-[jg] (\S+)/.exec(line);
    if (jump) {
      const from = `${table} ${jump[1]}`;
      jumps.set(from, (jumps.get(from) ?? new Set()).add(`${table} ${jump[2]}`));
    }
  }
  return chainsThatCount(bases, jumps);
}

/** Whether port `n` is in an iptables port list (`47474`, `47474:47480`, `1,2,3:4`). */
function iptablesPorts(spec: string, n: number): boolean {
  return spec.split(",").some((part) => {
    const [lo, hi] = part.split(":").map(Number) as [number, number | undefined];
    return hi === undefined ? n === lo : n >= lo && n <= hi;
  });
}
