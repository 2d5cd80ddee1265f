/**
 * Auto-replies while away: a reply carries a marker line, so no node ever
 * answers an auto-reply with its own (IP Messenger's AUTORETOPT rule, for
 * lanchat's messages too); IP Messenger's own auto-replies are stored with
 * the same marker, and ours go to its users with AUTORETOPT instead.
 *
 * @module
 */

import { MACHINE_LINE } from "./machine_line.ts";

/** Marks the line of a message that says it is an automatic reply. */
export const AUTO_MARK = `${MACHINE_LINE}auto`;

/** Whether a message is an automatic reply (ours or an IP Messenger client's). */
export function isAutoReply(text: string): boolean {
  return text.includes(AUTO_MARK);
}

/** The text of an automatic reply. */
export function autoReplyText(text: string): string {
  return `${text}\n${AUTO_MARK}`;
}

/** The text a person reads: the marker line taken out. */
export function withoutAutoMark(text: string): string {
  return text.replace(`\n${AUTO_MARK}`, "").replace(AUTO_MARK, "");
}
