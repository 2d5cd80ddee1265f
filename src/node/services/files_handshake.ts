/**
 * The file stream's handshake, both ends. With a peer whose hello carries a
 * static key (`nk`), Noise IK on the stream (security/file_handshake.ts):
 * the fetcher sends `init` at once, the server answers its `hello` and then
 * `reply`, and every frame after is sealed with the keys they split, the
 * first the fetcher's `want` (which offer, and the hello it read). With a
 * previous-version peer, the challenge and the signed `auth` as before
 * (sealed with the network key in a keyed group), the transfer marked not
 * end-to-end encrypted, and refused either way under --require-encryption.
 * A node that speaks end-to-end encryption is never fetched from nor served
 * in the clear (no downgrade).
 *
 * @module
 */
import { randomBytes } from "node:crypto";
import { StreamCipher, streamKey } from "../../security/file_cipher.ts";
import {
  answerFileHandshake,
  finishFileHandshake,
  helloDigest,
  startFileHandshake,
} from "../../security/file_handshake.ts";
import { nodeIdOf, type SignatureChecker } from "../../security/signing.ts";
import { controlPayload, FrameType } from "../../wire/file_frames.ts";
import { fetchProof } from "../../protocol/files.ts";
import { controlOf, type FrameConn, RemoteError, StreamError } from "./file_stream.ts";
import { b64, FileError, type FilesDeps, unb64 } from "./files_model.ts";

/** A connection that proved who fetches: which offer, by whom, and whether end-to-end encrypted. */
export interface Fetcher {
  offer: string;
  requester: string;
  encrypted: boolean;
  /** The cipher to set once the fetch is allowed (a previous-version peer's in a keyed group). */
  cipher?: StreamCipher;
}

/** Sends an error frame (`code`, `error`) and counts the refusal; the connection is then closed. */
export type Refuse = (code: string, error: string) => Promise<void>;

/**
 * The server's side: the hello, then the fetcher's `init` (or a previous
 * version's `auth`). Undefined once refused (the error frame sent).
 */
export async function acceptHandshake(
  c: FrameConn,
  d: FilesDeps,
  checker: SignatureChecker,
  refuse: Refuse,
): Promise<Fetcher | undefined> {
  const challenge = new Uint8Array(randomBytes(32));
  const hello = controlPayload({ v: 1, challenge: b64(challenge), ...(d.e2e ? { e2e: 1 } : {}) });
  await c.send(FrameType.hello, hello);
  const first = await c.next();
  if (first.type === FrameType.init && d.e2e) {
    const a = answerFileHandshake(d.e2e, first.payload.slice(), (id) => d.peerStaticKey?.(id));
    if (a.kind === "drop") {
      const theirs = a.reason === "bad-signature" || a.reason === "refused" || a.reason === "self";
      return void await refuse(theirs ? "not-yours" : "handshake", `the handshake failed: ${a.detail}`);
    }
    await c.send(FrameType.reply, a.response);
    c.cipher = a.cipher;
    const want = await c.control(FrameType.want);
    if (want.hello !== helloDigest(hello)) {
      return void await refuse("handshake", "the hello the fetcher read is not the one sent: altered on the way");
    }
    return { offer: String(want.offer ?? ""), requester: a.id, encrypted: true };
  }
  const auth = controlOf(first, FrameType.auth);
  const offer = String(auth.offer ?? "");
  const requester = String(auth.id ?? "");
  let publicKey: Uint8Array;
  let nonce: Uint8Array;
  let signature: Uint8Array;
  try {
    publicKey = unb64(auth.publicKey);
    nonce = unb64(auth.nonce);
    signature = unb64(auth.signature);
  } catch {
    return void await refuse("malformed", "a malformed request");
  }
  if (nonce.length < 16 || nonce.length > 64) return void await refuse("malformed", "a malformed request");
  if (nodeIdOf(publicKey) !== requester) return void await refuse("not-yours", "the key does not match the node id");
  const check = checker.check(requester, {
    publicKey,
    data: fetchProof(challenge, nonce, offer, requester),
    signature,
  });
  if (!check.ok) return void await refuse("not-yours", "the signature does not verify");
  if (d.e2e && d.peerStaticKey?.(requester)) {
    // Its hello says it speaks end-to-end encryption: a fetch in the clear under its id is a downgrade.
    return void await refuse("unencrypted", "this peer speaks end-to-end encryption: a fetch in the clear is refused");
  }
  if (d.requireEncryption) {
    return void await refuse(
      "unencrypted",
      "the sender requires end-to-end encryption (--require-encryption) and this lanchat is a version without it: " +
        "upgrade it to fetch",
    );
  }
  const cipher = d.networkKey ? new StreamCipher(streamKey(d.networkKey, challenge, nonce), "server") : undefined;
  return { offer, requester, encrypted: false, cipher };
}

/**
 * The static key to fetch from `peer` with, or undefined for a
 * previous-version peer; a {@link FileError} when this node requires
 * encryption and the peer has none.
 */
export function fetchKey(d: FilesDeps, peer: string): Uint8Array | undefined {
  const key = d.e2e ? d.peerStaticKey?.(peer) : undefined;
  if (!key && d.requireEncryption) {
    throw new FileError(
      `${d.peerName(peer)} runs a version of lanchat without end-to-end encryption, and this node requires it ` +
        "(--require-encryption)",
    );
  }
  return key;
}

/**
 * The fetcher's side, up to the welcome: end-to-end encrypted with
 * `peerKey` (from {@link fetchKey}), else as a previous version. A
 * handshake the stream spoiled (a frame altered on the way) is a
 * {@link StreamError}, tried again; a refusal, a {@link RemoteError}.
 * Returns the welcome (what the sender says it can do: `pipeline`, the
 * requests it answers in order when sent before their answers came).
 */
export async function connectHandshake(
  fc: FrameConn,
  d: FilesDeps,
  offer: string,
  peerKey: Uint8Array | undefined,
): Promise<Record<string, unknown>> {
  try {
    if (peerKey) return await e2eHandshake(fc, d, offer, peerKey);
    const hello = await fc.control(FrameType.hello);
    const challenge = unb64(hello.challenge);
    const nonce = new Uint8Array(randomBytes(32));
    const signature = d.signer.sign(fetchProof(challenge, nonce, offer, d.self.id));
    await fc.sendControl(FrameType.auth, {
      v: 1,
      offer,
      id: d.self.id,
      publicKey: b64(d.self.publicKey),
      nonce: b64(nonce),
      signature: b64(signature),
    });
    if (d.networkKey) fc.cipher = new StreamCipher(streamKey(d.networkKey, challenge, nonce), "client");
    return await fc.control(FrameType.welcome);
  } catch (e) {
    if (e instanceof RemoteError && e.code === "handshake") throw new StreamError(e.message);
    throw e;
  }
}

async function e2eHandshake(
  fc: FrameConn,
  d: FilesDeps,
  offer: string,
  peerKey: Uint8Array,
): Promise<Record<string, unknown>> {
  const { initiator, initiation } = startFileHandshake(d.e2e!, peerKey);
  // At once: the server sends its hello without waiting, so the handshake costs one round trip.
  await fc.send(FrameType.init, initiation);
  const digest = helloDigest(controlOf(await fc.next(), FrameType.hello, true));
  const cipher = finishFileHandshake(d.e2e!, initiator, controlOf(await fc.next(), FrameType.reply, true).slice());
  if (!(cipher instanceof StreamCipher)) {
    throw new StreamError(`the answer is not from the holder of the key the peer's hello carries (${cipher.detail})`);
  }
  fc.cipher = cipher;
  await fc.sendControl(FrameType.want, { v: 2, offer, hello: digest });
  return await fc.control(FrameType.welcome);
}
