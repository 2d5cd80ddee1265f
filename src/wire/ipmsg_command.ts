/**
 * IP Messenger command numbers and a peek at a datagram's command, with no
 * text codec: the daemon limits IP Messenger datagrams by kind before it
 * loads the codec (iconv-lite's GBK tables), which only `--ipmsg` needs.
 *
 * @module
 */

const COLON = 0x3a;

/** Command modes (low 8 bits). */
export const IPMSG = {
  NOOPERATION: 0x00,
  BR_ENTRY: 0x01,
  BR_EXIT: 0x02,
  ANSENTRY: 0x03,
  BR_ABSENCE: 0x04,
  SENDMSG: 0x20,
  RECVMSG: 0x21,
  READMSG: 0x30,
  ANSREADMSG: 0x32,
  GETINFO: 0x40,
  SENDINFO: 0x41,
  GETABSENCEINFO: 0x50,
  SENDABSENCEINFO: 0x51,
  GETFILEDATA: 0x60,
  RELEASEFILES: 0x61,
  GETDIRFILES: 0x62,
  GETPUBKEY: 0x72,
  ANSPUBKEY: 0x73,
} as const;

/** Option bits (high 24 bits). */
export const IPMSG_OPT = {
  ABSENCEOPT: 0x100,
  SENDCHECKOPT: 0x100,
  SECRETOPT: 0x200,
  BROADCASTOPT: 0x400,
  MULTICASTOPT: 0x800,
  AUTORETOPT: 0x2000,
  READCHECKOPT: 0x100000,
  FILEATTACHOPT: 0x200000,
  ENCRYPTOPT: 0x400000,
  UTF8OPT: 0x800000,
  CAPUTF8OPT: 0x1000000,
} as const;

/**
 * The command mode of a datagram (its fifth field, low 8 bits) without
 * decoding the rest, for rate limits applied before any decoding; undefined
 * when there is no such field.
 */
export function peekIpmsgMode(bytes: Uint8Array): number | undefined {
  let colons = 0;
  let command = 0;
  let digits = 0;
  for (let i = 0; i < bytes.length && i < 1024; i++) {
    const b = bytes[i]!;
    if (b === COLON) {
      if (++colons === 5) return digits > 0 && digits <= 10 ? command & 0xff : undefined;
    } else if (colons === 4 && b >= 0x30 && b <= 0x39) {
      command = command * 10 + (b - 0x30);
      digits++;
    }
  }
  return undefined;
}
