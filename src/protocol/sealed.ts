/**
 * IP Messenger's sealed messages (SECRETOPT): shown closed until the person
 * opens them, and opening one tells the sender (READMSG). The store keeps a
 * sealed message's text with a machine line saying so: for one received,
 * the packet number its READMSG names and whether the sender asked for an
 * answer (READCHECKOPT); for one to send, nothing more (it goes out with
 * SECRETOPT|READCHECKOPT, and its READMSG marks it read).
 *
 * @module
 */
import { MACHINE_LINE } from "./machine_line.ts";

/** Marks the line of a message that says it is sealed. */
export const SEALED_MARK = `${MACHINE_LINE}sealed`;

/** What a received sealed message needs for its READMSG. */
export interface SealedInfo {
  /** The packet number of the sealed message (its READMSG names it). */
  packetNo: string;
  /** The sender asked to be answered (READCHECKOPT): READMSG is sent again until ANSREADMSG. */
  readCheck: boolean;
}

/** A text marked sealed; with `info` for one received. */
export function sealedText(text: string, info?: SealedInfo): string {
  return `${text}\n${SEALED_MARK}${info ? ` ${JSON.stringify({ p: info.packetNo, rc: info.readCheck ? 1 : 0 })}` : ""}`;
}

/** Whether a stored text is a sealed message. */
export function isSealed(text: string): boolean {
  return text.includes(`\n${SEALED_MARK}`);
}

/** The text without the sealed line, and what the line says (undefined when not sealed). */
export function parseSealed(text: string): { text: string; info?: SealedInfo } | undefined {
  const at = text.lastIndexOf(`\n${SEALED_MARK}`);
  if (at < 0) return undefined;
  const rest = text.slice(at + 1 + SEALED_MARK.length);
  const out: { text: string; info?: SealedInfo } = { text: text.slice(0, at) };
  if (rest.startsWith(" ")) {
    try {
      const v = JSON.parse(rest.slice(1));
      if (typeof v?.p === "string" && /^\d{1,20}$/.test(v.p)) out.info = { packetNo: v.p, readCheck: v.rc === 1 };
    } catch { /* a line we did not write: sealed, with nothing to answer */ }
  }
  return out;
}
