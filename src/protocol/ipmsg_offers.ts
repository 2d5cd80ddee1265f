/**
 * Files offered in IP Messenger messages, the protocol's side of them
 * (the files themselves go over TCP, GETFILEDATA/GETDIRFILES, in
 * node/services/files_ipmsg.ts): the attachment list of a message that
 * comes in (FILEATTACHOPT), told in its text and handed on with its packet
 * number; RELEASEFILES both ways (a user who does not want the files of a
 * message). Our own offers go out with their messages (./ipmsg_outbox.ts).
 *
 * @module
 */
import { formatBytes } from "./files.ts";
import { capabilities, send } from "./ipmsg_encoding.ts";
import { type IpmsgState, touch } from "./ipmsg_state.ts";
import { IPMSG, IPMSG_OPT, type IpmsgPacket } from "../wire/ipmsg.ts";
import { IPMSG_FILE, type IpmsgAttachment, parseAttachments } from "../wire/ipmsg_files.ts";

/**
 * The files a message offers, and its text with them told (names, count,
 * size); none when it offers none, or in a form lanchat cannot read.
 */
export function offeredFiles(p: IpmsgPacket, text: string): { text: string; files?: IpmsgAttachment[] } {
  if (!(p.options & IPMSG_OPT.FILEATTACHOPT && !(p.options & IPMSG_OPT.ENCRYPTOPT) && /^\d{1,10}$/.test(p.packetNo))) {
    return { text };
  }
  const files = parseAttachments(p.extra[1] ?? "");
  const names = files.map((f) => f.kind === IPMSG_FILE.DIR ? `${f.name}/` : f.name);
  const size = formatBytes(files.reduce((n, f) => n + f.size, 0));
  text = files.length > 0
    ? `${text}\n(Files offered: ${names.slice(0, 3).join(", ")}${names.length > 3 ? ", …" : ""} (${
      files.length === 1 ? "1 file" : `${files.length} files`
    }, ${size}): lanchat transfers)`.trim()
    : `${text}\n(files were attached, in a form lanchat cannot read)`.trim();
  return { text, files };
}

/** Tells a user that the files of its message `packetNo` are not wanted (RELEASEFILES); false when it is not online. */
export function releaseFiles(s: IpmsgState, id: string, packetNo: number): boolean {
  const peer = s.peers.get(id);
  if (!peer) return false;
  send(s, { address: peer.address, port: peer.port }, IPMSG.RELEASEFILES | capabilities(s), [
    String(packetNo),
  ], peer.encoding);
  return true;
}

/** A RELEASEFILES: the user discarded the files we attached, our offer ends (IP Messenger sends it; iptux never does). */
export function onReleaseFiles(s: IpmsgState, p: IpmsgPacket, id: string, now: number): void {
  touch(s, id, now);
  const packetNo = (p.extra[0] ?? "").trim();
  if (/^\d{1,15}$/.test(packetNo)) {
    s.events.push({ type: "released", peerId: id, packetNo: Number(packetNo) });
  }
}
