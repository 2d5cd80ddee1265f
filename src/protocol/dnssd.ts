/**
 * DNS-SD over mDNS (RFC 6762, 6763) for lanchat, sans I/O and told the time:
 * the records this node advertises as `_lanchat._udp.local`, the answer to a
 * query that asks for them, and the browser that reads other nodes' records
 * from responses (a reflector's included) into candidates to probe.
 *
 * A candidate is only an address to send this node's signed hello to: a
 * peer joins the roster only by the signed hello it answers with, from its
 * own address (the driver checks that). So the browser's work is to bound
 * what a hostile responder makes it do: records are checked as the wire
 * checks names, at most {@link BrowserOptions.maxCandidates} candidates are
 * kept, new ones are rate-limited per responder and overall, a candidate is
 * probed for {@link PROBE_WINDOW_MS} and, unanswered, left alone for
 * {@link PROBE_BACKOFF_MS} (a record pointing at a victim costs it a few
 * hellos), and a candidate naming a node already in the roster is not
 * probed at all.
 *
 * The packets are dns-packet's decoded form (the codec of multicast-dns and
 * bonjour-service), typed here by the fields read.
 *
 * @module
 */
import { MAX_TEXT_FIELD, NODE_ID_PATTERN, PROTOCOL_VERSION, textFieldProblem } from "../wire/mod.ts";
import type { Endpoint } from "./transmit.ts";
import { isUnicastV4 } from "../common/unicast.ts";

import { PER_ADDRESS, ProbeBounds, RATE_WINDOW_MS } from "./probe_bounds.ts";

export { isUnicastV4 };
export {
  NEW_OVERALL,
  NEW_PER_SOURCE,
  PER_ADDRESS,
  PROBE_BACKOFF_MS,
  PROBES_PER_MINUTE,
  RATE_WINDOW_MS,
} from "./probe_bounds.ts";

/** The service type lanchat advertises and browses. */
export const SERVICE = "_lanchat._udp.local";
/** The mDNS group and port. */
export const MDNS_GROUP = "224.0.0.251";
export const MDNS_PORT = 5353;
/** RFC 6762 §17: an mDNS message is at most 9,000 bytes; larger is dropped unread. */
export const MAX_MDNS_BYTES = 9000;
/** SRV targets kept waiting for their A record, and for how long. */
export const MAX_PENDING = 64;
export const PENDING_MS = 30_000;
/** Records of one message looked at; the rest are ignored. */
export const MAX_RECORDS = 64;
/** TTL of our records: RFC 6762 §10 recommends 120 s for host records, 4,500 s for the others. */
export const HOST_TTL_S = 120;
export const SERVICE_TTL_S = 4500;
/** How long a candidate is probed before it is given up. */
export const PROBE_WINDOW_MS = 10_000;
/**
 * When this node queries after start; then after {@link REQUERY_MS}, the
 * gap doubling up to {@link MAX_REQUERY_MS} (RFC 6762 §5.2). Each query
 * lists the instances known (known-answer suppression, §7.1): a responder
 * that finds its own there does not answer, so a steady LAN is quiet.
 */
export const QUERY_AT_MS = [0, 1000, 3000];
export const REQUERY_MS = 60_000;
export const MAX_REQUERY_MS = 3_600_000;
/** Known answers a query carries at most (they must fit one 9,000-byte message). */
export const MAX_KNOWN_ANSWERS = 100;
/** When this node announces its records after start (RFC 6762 §8.3: at least twice, 1 s apart). */
export const ANNOUNCE_AT_MS = [0, 1000, 3000];

/** A resource record as dns-packet decodes and encodes it (the fields used here). */
export interface DnsRecord {
  name: string;
  type: string;
  ttl?: number;
  class?: string;
  flush?: boolean;
  // deno-lint-ignore no-explicit-any
  data?: any;
}

/** A DNS message as dns-packet decodes it. */
export interface DnsMessage {
  type?: "query" | "response";
  id?: number;
  flags?: number;
  questions?: { name: string; type: string }[];
  answers?: DnsRecord[];
  authorities?: DnsRecord[];
  additionals?: DnsRecord[];
}

/** What this node advertises. */
export interface Advertised {
  /** Instance label (see {@link instanceLabel}). */
  instance: string;
  /** Host name label, ours alone (`lanchat-<id>`: not the machine's name, which Avahi owns). */
  host: string;
  id: string;
  /** Unicast port (hellos, messages; TCP: files) and discovery port. */
  port: number;
  discoveryPort: number;
}

/**
 * A display name made a valid DNS-SD instance label: control characters
 * and dots out (a dot would need escaping that not every browser shows
 * well), at most 63 UTF-8 bytes cut on a character boundary, never empty.
 */
export function instanceLabel(name: string): string {
  // deno-lint-ignore no-control-regex
  let out = name.replace(/[\u0000-\u001f\u007f]/g, "").replace(/[.\\]/g, "-").trim();
  const enc = new TextEncoder();
  while (enc.encode(out).length > 63) out = [...out].slice(0, -1).join("");
  return out || "lanchat";
}

/** The full name of an instance. */
export function instanceName(label: string): string {
  return `${label}.${SERVICE}`;
}

/** Our records for an answer: PTR, SRV, TXT and an A record per address (TTL 0: a goodbye). */
export function serviceRecords(ad: Advertised, addresses: string[], goodbye = false): DnsRecord[] {
  const name = instanceName(ad.instance);
  const target = `${ad.host}.local`;
  const ttl = (t: number) => goodbye ? 0 : t;
  return [
    { name: SERVICE, type: "PTR", ttl: ttl(SERVICE_TTL_S), data: name },
    { name, type: "SRV", ttl: ttl(HOST_TTL_S), flush: true, data: { target, port: ad.port, priority: 0, weight: 0 } },
    { name, type: "TXT", ttl: ttl(SERVICE_TTL_S), flush: true, data: txtOf(ad) },
    ...addresses.map((a) => ({ name: target, type: "A", ttl: ttl(HOST_TTL_S), flush: true, data: a })),
  ];
}

/** TXT strings (RFC 6763 §6): `id`, protocol version `v`, unicast port `u`, discovery port `d`. */
function txtOf(ad: Advertised): string[] {
  return [`id=${ad.id}`, `v=${PROTOCOL_VERSION}`, `u=${ad.port}`, `d=${ad.discoveryPort}`];
}

/**
 * Whether a query asks for our records (the service type, service
 * enumeration, or our instance or host), and does not already know our PTR
 * with at least half its TTL left (known-answer suppression).
 */
export function asksForUs(query: DnsMessage, ad: Advertised): boolean {
  const ours = instanceName(ad.instance).toLowerCase();
  for (const k of (query.answers ?? []).slice(0, MAX_KNOWN_ANSWERS)) {
    if (
      k?.type === "PTR" && typeof k.name === "string" && k.name.toLowerCase() === SERVICE &&
      typeof k.data === "string" && k.data.toLowerCase() === ours && (k.ttl ?? 0) >= SERVICE_TTL_S / 2
    ) return false;
  }
  return asksForName(query, ad);
}

function asksForName(query: DnsMessage, ad: Advertised): boolean {
  const ours = new Set([
    SERVICE,
    "_services._dns-sd._udp.local",
    instanceName(ad.instance).toLowerCase(),
    `${ad.host}.local`.toLowerCase(),
  ].map((n) => n.toLowerCase()));
  for (const q of (query.questions ?? []).slice(0, MAX_RECORDS)) {
    if (typeof q?.name === "string" && ours.has(q.name.toLowerCase())) return true;
  }
  return false;
}

/**
 * Whether a response claims our instance name for another host (an SRV of
 * that name with another target: two nodes with one display name). RFC 6763
 * §9 has the later one rename; see {@link renamed}.
 */
export function claimsOurName(msg: DnsMessage, ad: Advertised): boolean {
  const ours = instanceName(ad.instance).toLowerCase();
  const target = `${ad.host}.local`.toLowerCase();
  for (const r of [...(msg.answers ?? []), ...(msg.additionals ?? [])].slice(0, MAX_RECORDS)) {
    if (r?.type !== "SRV" || typeof r.name !== "string" || r.name.toLowerCase() !== ours) continue;
    if (typeof r.data?.target === "string" && r.data.target.toLowerCase() !== target && r.ttl !== 0) return true;
  }
  return false;
}

/** Our instance label made unique by the start of our node id: `name (1a2b)`. */
export function renamed(label: string, id: string): string {
  const suffix = ` (${id.slice(0, 4)})`;
  return instanceLabel(label.endsWith(suffix) ? label : `${[...label].slice(0, 56).join("")}${suffix}`);
}

/** One instance read from a response. */
export interface Instance {
  /** The instance label. */
  instance: string;
  id?: string;
  version?: number;
  address: string;
  port: number;
  /** Seconds the records live (0: a goodbye): the SRV's, and the PTR's (the SRV's when no PTR came). */
  ttl: number;
  ptrTtl: number;
}

/** Why a response (or a record of it) was not used, counted. */
export type DnssdDrop = "oversize" | "malformed" | "bad-record" | "full" | "rate-limit" | "backoff" | "flood";

/** mDNS datagrams read a second from one source, and from all: past them a datagram is dropped undecoded. */
export const DATAGRAMS_PER_SOURCE = 100;
export const DATAGRAMS_OVERALL = 1000;

/**
 * The per-second budget of mDNS datagrams decoded, per source and overall,
 * so that a flood at port 5353 costs a count, not a decode, per datagram.
 */
export class DatagramBudget {
  #second = -1;
  #all = 0;
  #bySource = new Map<string, number>();

  /** Whether a datagram from `source` at `now` may be read. */
  allow(source: string, now: number): boolean {
    const second = Math.floor(now / 1000);
    if (second !== this.#second) {
      this.#second = second;
      this.#all = 0;
      this.#bySource.clear();
    }
    const mine = this.#bySource.get(source) ?? 0;
    if (mine >= DATAGRAMS_PER_SOURCE || this.#all >= DATAGRAMS_OVERALL) return false;
    this.#bySource.set(source, mine + 1);
    this.#all++;
    return true;
  }
}

/**
 * The `_lanchat._udp` instances a response describes, each complete (SRV
 * with a port, an A record of its target), checked: names and labels as the
 * wire checks text, TXT `id` a node id, addresses IPv4 unicast. At most
 * {@link MAX_RECORDS} records are read.
 */
export function readInstances(msg: DnsMessage): {
  instances: Instance[];
  bad: number;
  /** Instances whose SRV target had no A record in the message (it may come in another), by target. */
  unresolved: Map<string, Omit<Instance, "address">>;
  /** The A records of the message, by name. */
  addresses: Map<string, string[]>;
} {
  const records = [...(msg.answers ?? []), ...(msg.additionals ?? [])].slice(0, MAX_RECORDS);
  let bad = 0;
  const srv = new Map<string, { target: string; port: number; ttl: number }>();
  const txt = new Map<string, Record<string, string>>();
  const a = new Map<string, string[]>();
  const names = new Set<string>();
  const ptrTtl = new Map<string, number>();
  const badTxt = new Set<string>();
  const suffix = `.${SERVICE}`;
  for (const r of records) {
    if (!r || typeof r.name !== "string" || typeof r.type !== "string") {
      bad++;
      continue;
    }
    const name = r.name.toLowerCase();
    if (r.type === "PTR" && name === SERVICE && typeof r.data === "string") {
      names.add(r.data);
      ptrTtl.set(r.data.toLowerCase(), ttlOf(r));
    } else if (r.type === "SRV" && name.endsWith(suffix)) {
      const d = r.data;
      if (typeof d?.target !== "string" || !Number.isInteger(d?.port) || d.port < 1 || d.port > 65535) bad++;
      else srv.set(name, { target: d.target.toLowerCase(), port: d.port, ttl: ttlOf(r) });
      names.add(r.name);
    } else if (r.type === "TXT" && name.endsWith(suffix)) {
      const kv = txtValues(r.data);
      if (kv) txt.set(name, kv);
      else {
        badTxt.add(name);
        bad++;
      }
    } else if (r.type === "A") {
      if (typeof r.data !== "string" || !isUnicastV4(r.data)) {
        bad++;
        continue;
      }
      const list = a.get(name) ?? [];
      if (list.length < 4) list.push(r.data);
      a.set(name, list);
    }
  }
  const instances: Instance[] = [];
  const unresolved = new Map<string, Omit<Instance, "address">>();
  for (const full of names) {
    const key = full.toLowerCase();
    if (!key.endsWith(suffix)) {
      bad++;
      continue;
    }
    const label = full.slice(0, -suffix.length);
    if (label.length === 0 || label.includes(".") || textFieldProblem(label, 1) !== undefined) {
      bad++;
      continue;
    }
    const s = srv.get(key);
    if (!s || badTxt.has(key)) continue; // a PTR alone: the SRV comes with a later answer
    const kv = txt.get(key) ?? {};
    const id = kv.id !== undefined && NODE_ID_PATTERN.test(kv.id) ? kv.id : undefined;
    const version = kv.v !== undefined && /^\d{1,4}$/.test(kv.v) ? Number(kv.v) : undefined;
    const inst = { instance: label, id, version, port: s.port, ttl: s.ttl, ptrTtl: ptrTtl.get(key) ?? s.ttl };
    const addresses = a.get(s.target);
    if (!addresses) unresolved.set(s.target, inst);
    for (const address of addresses ?? []) instances.push({ ...inst, address });
  }
  return { instances, bad, unresolved, addresses: a };
}

function ttlOf(r: DnsRecord): number {
  return typeof r.ttl === "number" && r.ttl >= 0 ? Math.min(r.ttl, SERVICE_TTL_S) : HOST_TTL_S;
}

/** TXT strings (dns-packet gives Buffers or strings) as key=value, at most 16 of them, each a text field. */
function txtValues(data: unknown): Record<string, string> | undefined {
  const list = Array.isArray(data) ? data : [data];
  if (list.length > 16) return undefined;
  const out: Record<string, string> = {};
  const dec = new TextDecoder("utf-8", { fatal: true });
  for (const item of list) {
    let s: string;
    try {
      s = typeof item === "string" ? item : item instanceof Uint8Array ? dec.decode(item) : "";
    } catch {
      return undefined;
    }
    if (s.length > MAX_TEXT_FIELD + 8) return undefined;
    const eq = s.indexOf("=");
    if (eq > 0) out[s.slice(0, eq).toLowerCase()] = s.slice(eq + 1);
  }
  return out;
}

/** A candidate the browser keeps. */
interface Candidate {
  instance: string;
  id?: string;
  to: Endpoint;
  /** When its records stop being valid; when its PTR does. */
  expires: number;
  ptrExpires: number;
  /** When probing began; undefined once answered. */
  probingSince?: number;
}

export interface BrowserOptions {
  selfId: string;
  /** Bound on candidates (the roster's, --max-peers). */
  maxCandidates: number;
  /** Whether the roster holds a peer at this address (it answered a probe, or is known already). */
  answered: (address: string) => boolean;
  /** Whether the roster holds this node id already. */
  known: (id: string) => boolean;
  /**
   * Whether an address is on a subnet of this host's (its broadcasts reach
   * us): such a node, once answered, is not sent unicast hellos as well.
   */
  onLink?: (address: string) => boolean;
  /**
   * Whether an address is the network or directed-broadcast address of one
   * of this host's subnets: never a peer's, so never probed.
   */
  subnetEdge?: (address: string) => boolean;
}

/** Counters of the browser. */
export interface BrowserCounters {
  instancesSeen: number;
  probed: number;
  answered: number;
  givenUp: number;
  dropped: Record<DnssdDrop, number>;
}

/**
 * Instances read from responses, kept as candidates: {@link endpoints} are
 * the addresses discovery sends its hello to (probing, or answered and kept
 * while their records live).
 */
export class Browser {
  #o: BrowserOptions;
  #candidates = new Map<string, Candidate>();
  #bounds = new ProbeBounds();
  #pending = new Map<string, { instance: Omit<Instance, "address">; expires: number }>();
  #changed = false;
  readonly counters: BrowserCounters = {
    instancesSeen: 0,
    probed: 0,
    answered: 0,
    givenUp: 0,
    dropped: { oversize: 0, malformed: 0, "bad-record": 0, full: 0, "rate-limit": 0, backoff: 0, flood: 0 },
  };

  constructor(o: BrowserOptions) {
    this.#o = o;
  }

  /** Candidates now. */
  get size(): number {
    return this.#candidates.size;
  }

  /** Takes a decoded response from `source` (the responder, or the reflector that repeated it). */
  take(msg: DnsMessage, source: string, now: number): void {
    const { instances, bad, unresolved, addresses } = readInstances(msg);
    this.counters.dropped["bad-record"] += bad;
    // An SRV whose target's A record comes in a later message (Avahi publishes the two apart) waits for it.
    for (const [target, inst] of addresses.size > 0 ? this.#pending : []) {
      const found = addresses.get(target);
      if (inst.expires <= now || found) this.#pending.delete(target);
      if (inst.expires <= now) continue;
      for (const address of found ?? []) instances.push({ ...inst.instance, address });
    }
    for (const [target, instance] of unresolved) {
      if (this.#pending.size >= MAX_PENDING && !this.#pending.has(target)) break;
      this.#pending.set(target, { instance, expires: now + PENDING_MS });
    }
    this.offer(instances, source, now);
  }

  /** SRV targets waiting for their A record (to be asked for), dropping those that waited too long. */
  unresolvedTargets(now: number): string[] {
    for (const [target, p] of this.#pending) if (p.expires <= now) this.#pending.delete(target);
    return [...this.#pending.keys()];
  }

  /**
   * Takes instances learnt from `source` (a responder, a peer's list, this
   * node's own cache), checked already: each is a candidate to probe,
   * within the bounds.
   */
  offer(instances: readonly Instance[], source: string, now: number): void {
    for (const inst of instances) {
      this.counters.instancesSeen++;
      if (inst.id === this.#o.selfId) continue;
      const key = `${inst.address}:${inst.port}`;
      const c = this.#candidates.get(key);
      if (inst.ttl === 0) {
        if (c) {
          this.#candidates.delete(key);
          this.#changed = true;
        }
        continue;
      }
      if (c) {
        c.expires = Math.max(c.expires, now + inst.ttl * 1000);
        c.ptrExpires = Math.max(c.ptrExpires, now + inst.ptrTtl * 1000);
        continue;
      }
      if (!this.#acceptable(inst.address)) {
        this.counters.dropped["bad-record"]++;
        continue;
      }
      if (this.#atAddress(inst.address) >= PER_ADDRESS) {
        this.counters.dropped["rate-limit"]++;
        continue;
      }
      if (this.#o.answered(inst.address)) {
        // Known already (by broadcast, say): kept, not probed.
        this.#add(key, inst, now, undefined);
        continue;
      }
      if (inst.id !== undefined && this.#o.known(inst.id)) continue;
      if (this.#bounds.backedOff(inst.address, now)) {
        this.counters.dropped.backoff++;
        continue;
      }
      if (this.#candidates.size >= this.#o.maxCandidates) {
        this.counters.dropped.full++;
        continue;
      }
      if (!this.#bounds.allowNew(source, now)) {
        this.counters.dropped["rate-limit"]++;
        continue;
      }
      this.counters.probed++;
      this.#add(key, inst, now, now);
    }
  }

  #add(key: string, inst: Instance, now: number, probingSince: number | undefined): void {
    this.#candidates.set(key, {
      instance: inst.instance,
      id: inst.id,
      to: { address: inst.address, port: inst.port },
      expires: now + inst.ttl * 1000,
      ptrExpires: now + inst.ptrTtl * 1000,
      probingSince,
    });
    this.#changed = true;
  }

  /** A unicast address (an IPv6 one as it is), not an edge of one of our subnets. */
  #acceptable(address: string): boolean {
    if (address.includes(":")) return true;
    return isUnicastV4(address) && !(this.#o.subnetEdge?.(address) ?? false);
  }

  /** Candidates at `address` now, whatever their ports. */
  #atAddress(address: string): number {
    let n = 0;
    for (const c of this.#candidates.values()) if (c.to.address === address) n++;
    return n;
  }

  /** Probes answered, given up or expired at `now`. */
  tick(now: number): void {
    for (const [key, c] of this.#candidates) {
      if (c.probingSince !== undefined) {
        if (this.#o.answered(c.to.address)) {
          c.probingSince = undefined;
          this.counters.answered++;
          this.#changed = true;
        } else if (now - c.probingSince >= PROBE_WINDOW_MS) {
          this.#candidates.delete(key);
          this.#bounds.giveUp(c.to.address, now);
          this.counters.givenUp++;
          this.#changed = true;
        }
      } else if (c.expires <= now) {
        if (this.#o.answered(c.to.address)) {
          c.expires = now + RATE_WINDOW_MS; // records gone, the peer still there: looked at again later
          continue;
        }
        this.#candidates.delete(key);
        this.#changed = true;
      }
    }
    this.#bounds.expire(now);
  }

  /** The next time {@link tick} has something to do. */
  nextDeadline(): number | undefined {
    let next = Infinity;
    for (const c of this.#candidates.values()) {
      const at = c.probingSince !== undefined ? c.probingSince + PROBE_WINDOW_MS : c.expires;
      if (at < next) next = at;
    }
    return next === Infinity ? undefined : next;
  }

  /**
   * When the driver should call {@link tick} next, at `now`: the next
   * deadline, and twice a second while a candidate is probed (its answer
   * is a roster join, which the browser does not see come).
   */
  nextWake(now: number): number | undefined {
    let next = this.nextDeadline() ?? Infinity;
    for (const c of this.#candidates.values()) {
      if (c.probingSince !== undefined) {
        next = Math.min(next, now + 500);
        break;
      }
    }
    return next === Infinity ? undefined : next;
  }

  /** The endpoints discovery sends hellos to; `changed` when they differ from the last call's. */
  endpoints(): { changed: boolean; endpoints: Endpoint[] } {
    const changed = this.#changed;
    this.#changed = false;
    const onLink = this.#o.onLink ?? (() => false);
    const endpoints = [...this.#candidates.values()]
      .filter((c) => c.probingSince !== undefined || !onLink(c.to.address))
      .map((c) => c.to);
    return { changed, endpoints };
  }

  /** The PTRs of the instances known now, for a query's known answers, with the TTL left. */
  knownAnswers(now: number): DnsRecord[] {
    const out: DnsRecord[] = [];
    for (const c of this.#candidates.values()) {
      const ttl = Math.floor((c.ptrExpires - now) / 1000);
      if (ttl < SERVICE_TTL_S / 2 || out.length >= MAX_KNOWN_ANSWERS) continue;
      out.push({ name: SERVICE, type: "PTR", ttl, data: instanceName(c.instance) });
    }
    return out;
  }

  /** The candidates, for `/status`. */
  list(): { instance: string; id?: string; address: string; port: number; state: "probing" | "answered" }[] {
    return [...this.#candidates.values()].map((c) => ({
      instance: c.instance,
      id: c.id,
      address: c.to.address,
      port: c.to.port,
      state: c.probingSince !== undefined ? "probing" : "answered",
    }));
  }
}
