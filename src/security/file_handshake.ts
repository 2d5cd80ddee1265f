/**
 * End-to-end encryption of the file stream (TCP) between lanchat peers: the
 * Noise IK handshake of the datagrams (e2e_handshake.ts, the same static
 * keys, bound to the same node keys) as the stream's first two frames, the
 * fetcher the initiator and the serving side the responder; then every
 * frame sealed with the two keys it split, one per direction
 * (file_cipher.ts). Each connection has keys of its own, from ephemeral
 * X25519 keys on both sides: forward secrecy per connection.
 *
 * What the datagrams' table needs and the stream does not: indices (a
 * connection is its own session: both are 0) and stamps (an initiation
 * replayed on a new connection gets a response made with a new ephemeral
 * key, which only the holder of the initiator's keys reads; nothing after it
 * opens; the stamp is sent as zero and not checked, and one fetcher's
 * parallel connections need no order between them). Pure: bytes in, bytes
 * and ciphers out.
 *
 * @module
 */
import { createHash, timingSafeEqual } from "node:crypto";
import {
  consumeInitiation,
  consumeResponse,
  createInitiation,
  createResponse,
  type Drop,
  drop,
} from "./e2e_handshake.ts";
import { parseE2e, type StaticIdentity } from "./e2e_wire.ts";
import { StreamCipher } from "./file_cipher.ts";
import type { IkInitiator } from "./noise.ts";

const NO_STAMP = { incarnation: 0, sequence: 0 };

/** The fetcher's first frame to the node whose static key is `peerStatic`, and the state that reads the answer. */
export function startFileHandshake(
  me: StaticIdentity,
  peerStatic: Uint8Array,
): { initiator: IkInitiator; initiation: Uint8Array } {
  const { initiator, bytes } = createInitiation(me, peerStatic, 0, NO_STAMP);
  return { initiator, initiation: bytes };
}

/**
 * The serving side's answer to an initiation: who sent it (its node key
 * checked by the Noise handshake and the binding), the response frame, and
 * the stream's cipher. `known(id)`: the static key that node's hello
 * carries, when there is one; an initiation under another key is refused.
 * Never throws.
 */
export function answerFileHandshake(
  me: StaticIdentity,
  initiation: Uint8Array,
  known: (id: string) => Uint8Array | undefined,
): { kind: "answered"; id: string; response: Uint8Array; cipher: StreamCipher } | Drop {
  const parsed = parseE2e(initiation);
  if (typeof parsed === "string") return drop("malformed", parsed);
  if (parsed.type !== "initiation") return drop("malformed", `an e2e ${parsed.type}, not an initiation`);
  const taken = consumeInitiation(me, initiation);
  if (taken.kind === "drop") return taken;
  const hello = known(taken.id);
  if (hello && (hello.length !== taken.staticKey.length || !timingSafeEqual(hello, taken.staticKey))) {
    return drop("refused", `${taken.id} presented a static key that is not the one its hello carries`);
  }
  const { bytes, keys } = createResponse(taken, 0);
  return { kind: "answered", id: taken.id, response: bytes, cipher: new StreamCipher(keys, "server") };
}

/** The fetcher's cipher from the serving side's response; a drop when it is not the answer of `peerStatic`'s holder. */
export function finishFileHandshake(
  me: StaticIdentity,
  initiator: IkInitiator,
  response: Uint8Array,
): StreamCipher | Drop {
  const parsed = parseE2e(response);
  if (typeof parsed === "string") return drop("malformed", parsed);
  if (parsed.type !== "response") return drop("malformed", `an e2e ${parsed.type}, not a response`);
  const r = consumeResponse(me, initiator, response);
  return r.kind === "drop" ? r : new StreamCipher(r.keys, "client");
}

/**
 * What the fetcher's first sealed frame says of the serving side's (plain)
 * hello: its SHA-256, hex. The serving side compares it with the hello it
 * sent, so a hello altered on the way is caught too.
 */
export function helloDigest(payload: Uint8Array): string {
  return createHash("sha256").update(payload).digest("hex");
}
