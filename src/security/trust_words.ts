/**
 * How far a peer's node key is trusted, in words a person acts on: the
 * state the roster shows (verified, not verified, KEY CHANGED, replaced)
 * and, when a key changed, what it means and what to do, as `lanchat
 * peers`, `status`, `verify` and the web page say it.
 *
 * @module
 */
import type { Pin } from "../storage/store.ts";
import { fingerprintOf } from "./signing.ts";

/** A pinned key's trust as people read it. */
export type TrustState = "verified" | "not verified" | "key changed" | "replaced";

/** The state shown for a pin's trust; undefined when no key is pinned. */
export function trustState(trust: Pin["trust"] | undefined): TrustState | undefined {
  switch (trust) {
    case "trusted":
      return "verified";
    case "tofu":
      return "not verified";
    case "conflict":
      return "key changed";
    case "replaced":
      return "replaced";
    default:
      return undefined;
  }
}

/**
 * What a changed key means, in words, for a pin in conflict (a new key
 * claiming a name pinned to another key) or replaced (its name handed to
 * another key); undefined for the others. `other` is the key the name
 * belongs to, when it is still pinned.
 */
export function keyChangeNote(pin: Pin, other: Pin | undefined): string | undefined {
  const name = pin.name;
  const short = pin.id.slice(0, 8);
  if (pin.trust === "conflict") {
    const was = other
      ? ` (key ${fingerprintOf(other.id)}, ${
        other.trust === "trusted" ? "which you verified" : "first seen, never verified"
      })`
      : "";
    return `${name}'s key changed: this key (${fingerprintOf(pin.id)}) is not the one pinned for ${
      other?.name ?? name
    }${was}. ` +
      `It may be ${name}'s host with a new key, or someone else using the name. ` +
      `Messages to "${name}" are refused until you compare safety numbers with ${name} in person ` +
      `(lanchat verify ${short}) and confirm this key, or address a key by its id`;
  }
  if (pin.trust === "replaced") {
    const now = other ? ` (key ${fingerprintOf(other.id)})` : "";
    return `${name}'s name went to another key you verified${now}: this old key (${fingerprintOf(pin.id)}) ` +
      `is no longer picked by the name; if ${name} still uses it, verify it again (lanchat verify ${short})`;
  }
  return undefined;
}
