/**
 * File transfer between lanchat peers, the parts without I/O: the notes
 * that travel as reliable messages (an offer, and its outcome: refused,
 * cancelled, received), the manifest of an offer, the rules a server
 * applies to a fetch, and what a transfer is.
 *
 * The protocol (docs/protocol.md, "Files"): the sender hashes every file
 * (SHA-256) while offering and sends the offer as a message: a line a
 * person reads, then a line `U+0001 lanchat-files {json}` with the offer's
 * id, file count, total size, top-level names, expiry and the SHA-256 of
 * its manifest. The manifest (every file's relative path, size, mtime and
 * SHA-256) is fetched like a file, so an offer of 10,000 files stays one
 * small message. The receiver pulls each file over TCP from the offset it
 * already has, checks the SHA-256, and says "received" in a message.
 *
 * @module
 */

import { MACHINE_LINE } from "./machine_line.ts";

/** Marks the line of a message that carries a file note. */
export const FILES_MARK = `${MACHINE_LINE}files `;
/** How long an offer can be fetched after it is made. */
export const OFFER_TTL_MS = 7 * 24 * 3600_000;
/** Most files in one offer. */
export const MAX_OFFER_FILES = 100_000;
/** Most top-level names listed in the offer note itself. */
export const MAX_NOTE_NAMES = 20;

export type TransferState =
  | "offered" // incoming: waiting for the user to accept; outgoing: delivered, waiting for the peer to accept
  | "waiting" // outgoing: the offer is not delivered yet (the peer is offline); incoming: accepted, the sender is unreachable
  | "active"
  | "paused" // incoming: the sender went away mid-way; tried again with a back-off, at once when it is back
  | "done"
  | "refused"
  | "failed"
  | "cancelled";

/** A state nothing more happens in. */
export function finished(state: TransferState): boolean {
  return state === "done" || state === "refused" || state === "failed" || state === "cancelled";
}

export interface OfferNote {
  kind: "offer";
  offer: string;
  count: number;
  bytes: number;
  /** The top-level names (a file, or a folder ending in "/"), at most MAX_NOTE_NAMES. */
  names: string[];
  /** SHA-256 (hex) of the manifest's bytes. */
  manifest: string;
  /** ms since the epoch: after it the sender serves nothing of it. */
  expires: number;
}
export interface OutcomeNote {
  kind: "refused" | "cancelled" | "received";
  offer: string;
  reason?: string;
}
export type FilesNote = OfferNote | OutcomeNote;

/** One file of an offer's manifest. */
export interface ManifestEntry {
  /** Relative path as offered ("/"-separated): only a suggestion, made safe by the receiver. */
  path: string;
  size: number;
  /** Modification time, ms since the epoch. */
  mtime: number;
  /** SHA-256, hex. */
  sha256: string;
}

/** "12.3 MB" (decimal units, as file managers show). */
export function formatBytes(n: number): string {
  if (n < 1000) return `${n} B`;
  const units = ["kB", "MB", "GB", "TB"];
  let v = n;
  let u = -1;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${v < 100 ? v.toFixed(1) : Math.round(v)} ${units[u]}`;
}

/** The line a person reads for a note. */
export function noteSummary(note: FilesNote): string {
  if (note.kind === "offer") {
    const shown = note.names.slice(0, 3).join(", ") + (note.names.length > 3 ? ", …" : "");
    const files = note.count === 1 ? "1 file" : `${note.count} files`;
    return `Files offered: ${shown} (${files}, ${formatBytes(note.bytes)})`;
  }
  const what = { refused: "Files refused", cancelled: "File offer cancelled", received: "Files received" }[note.kind];
  return note.reason ? `${what}: ${note.reason}` : what;
}

/** The text of the message that carries a note. */
export function noteText(note: FilesNote): string {
  return `${noteSummary(note)}\n${FILES_MARK}${JSON.stringify(note)}`;
}

const HEX64 = /^[0-9a-f]{64}$/;
const OFFER_ID = /^[0-9a-f]{32}$/;

/** The note a message carries, if it is one and well formed (anything else is an ordinary message). */
export function parseNote(text: string): FilesNote | undefined {
  const at = text.indexOf(FILES_MARK);
  if (at < 0) return undefined;
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(text.slice(at + FILES_MARK.length));
  } catch {
    return undefined;
  }
  if (v === null || typeof v !== "object" || typeof v.offer !== "string" || !OFFER_ID.test(v.offer)) return undefined;
  if (v.kind === "offer") {
    const n = (x: unknown) => typeof x === "number" && Number.isSafeInteger(x) && x >= 0;
    if (!n(v.count) || !n(v.bytes) || !n(v.expires) || (v.count as number) > MAX_OFFER_FILES) return undefined;
    if (typeof v.manifest !== "string" || !HEX64.test(v.manifest)) return undefined;
    if (!Array.isArray(v.names) || v.names.length > MAX_NOTE_NAMES || v.names.some((x) => typeof x !== "string")) {
      return undefined;
    }
    return {
      kind: "offer",
      offer: v.offer,
      count: v.count as number,
      bytes: v.bytes as number,
      names: v.names as string[],
      manifest: v.manifest,
      expires: v.expires as number,
    };
  }
  if (v.kind === "refused" || v.kind === "cancelled" || v.kind === "received") {
    return {
      kind: v.kind,
      offer: v.offer,
      ...(typeof v.reason === "string" ? { reason: v.reason.slice(0, 500) } : {}),
    };
  }
  return undefined;
}

/** A manifest as bytes (the offer note carries their SHA-256). */
export function manifestBytes(entries: readonly ManifestEntry[]): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ v: 1, files: entries }));
}

/** A manifest from its bytes; undefined unless every entry is well formed. */
export function parseManifest(bytes: Uint8Array): ManifestEntry[] | undefined {
  let v: { files?: unknown };
  try {
    v = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    return undefined;
  }
  if (!v || !Array.isArray(v.files) || v.files.length > MAX_OFFER_FILES) return undefined;
  const out: ManifestEntry[] = [];
  for (const f of v.files as Record<string, unknown>[]) {
    if (
      !f || typeof f.path !== "string" || f.path.length > 4096 || typeof f.size !== "number" ||
      !Number.isSafeInteger(f.size) || f.size < 0 || typeof f.mtime !== "number" || typeof f.sha256 !== "string" ||
      !HEX64.test(f.sha256)
    ) return undefined;
    out.push({ path: f.path, size: f.size, mtime: f.mtime, sha256: f.sha256 });
  }
  return out;
}

/**
 * Why a manifest lists other files than its offer's note named, or
 * undefined when it lists those: every entry's top-level name (a file, or a
 * folder as "name/") is one the note named, as many times for a file, and
 * every file the note named is there (a folder it named may have no entry:
 * empty, or its files all skipped). A note that lists {@link MAX_NOTE_NAMES}
 * names may have been cut short: then only the names it lists are checked
 * to be there.
 */
export function manifestMismatch(names: string[], entries: { path: string }[]): string | undefined {
  const files = new Map<string, number>();
  const folders = new Set<string>();
  for (const e of entries) {
    const slash = e.path.indexOf("/");
    if (slash < 0) files.set(e.path, (files.get(e.path) ?? 0) + 1);
    else folders.add(e.path.slice(0, slash + 1));
  }
  const named = new Map<string, number>();
  for (const n of names) named.set(n, (named.get(n) ?? 0) + 1);
  const complete = names.length < MAX_NOTE_NAMES;
  const q = (s: string) => JSON.stringify(s).slice(0, 100);
  for (const [name, n] of files) {
    const said = named.get(name) ?? 0;
    if (said === 0 && complete) return `it lists ${q(name)}, which the offer did not name`;
    if (said !== 0 && said < n && complete) return `it lists ${q(name)} ${n} times, the offer ${said}`;
  }
  for (const f of folders) {
    if (!named.has(f) && complete) return `it lists a folder ${q(f)}, which the offer did not name`;
  }
  for (const [name, said] of named) {
    if (!name.endsWith("/") && (files.get(name) ?? 0) < said) return `it lacks ${q(name)}, which the offer named`;
  }
  return undefined;
}

/** What a server knows of an offer it made. */
export interface ServedOffer {
  to: string;
  state: TransferState;
  expires: number;
  count: number;
}

export type FetchDecision = { ok: true } | {
  ok: false;
  code: "unknown" | "not-yours" | "expired" | "ended" | "no-such-file";
  error: string;
};

/**
 * Whether `requester` (whose node key has been checked) may fetch `file`
 * (-1: the manifest) of an offer, at wall time `now`: only the peer the
 * offer was made to, only what it lists, only while it lasts.
 */
export function mayFetch(
  offer: ServedOffer | undefined,
  requester: string,
  file: number,
  now: number,
): FetchDecision {
  if (!offer) return { ok: false, code: "unknown", error: "no such offer" };
  if (offer.to !== requester) return { ok: false, code: "not-yours", error: "this offer was not made to you" };
  if (now > offer.expires) return { ok: false, code: "expired", error: "the offer has expired" };
  if (finished(offer.state) && offer.state !== "done") {
    return { ok: false, code: "ended", error: `the offer was ${offer.state}` };
  }
  if (!Number.isSafeInteger(file) || file < -1 || file >= offer.count) {
    return { ok: false, code: "no-such-file", error: "the offer has no such file" };
  }
  return { ok: true };
}

/** The bytes a requester signs to prove it is the node it says (with its Ed25519 node key). */
export function fetchProof(challenge: Uint8Array, nonce: Uint8Array, offer: string, requester: string): Uint8Array {
  const head = new TextEncoder().encode(`lanchat files v1\n${offer}\n${requester}\n`);
  const out = new Uint8Array(head.length + challenge.length + nonce.length);
  out.set(head);
  out.set(challenge, head.length);
  out.set(nonce, head.length + challenge.length);
  return out;
}
