/**
 * This node's identity: an Ed25519 key pair (WebCrypto) created once and kept
 * in the data directory, and the node id derived from its public key.
 *
 * @module
 */
import { KEY_FILE } from "../common/data_dir.ts";
import { privateFileProblem } from "./private_file.ts";
import { nodeIdOf } from "./signing.ts";

export interface Identity {
  /** 32 lowercase hex characters: the first 128 bits of SHA-256(public key). */
  id: string;
  /** Raw 32-byte Ed25519 public key. */
  publicKey: Uint8Array;
  privateKey: CryptoKey;
  /** The private key as PKCS #8 DER, for the synchronous signer (signing.ts). */
  pkcs8: Uint8Array;
  /** True when the key pair was created by this call. */
  created: boolean;
}

interface KeyFile {
  version: 1;
  publicKey: string;
  privateKey: string;
}

/**
 * Why the node key at `path` is not this daemon user's alone (another user owns it, or group or others may read or
 * write it), or undefined. Such a key is refused: whoever could read it holds this node's identity and can open its
 * end-to-end sessions; whoever owns it may have put in a key of their own.
 */
export function unsafeKeyFile(info: Deno.FileInfo, path: string, uid = Deno.uid()): string | undefined {
  const problem = privateFileProblem(info, uid);
  if (problem && "owner" in problem) {
    return `Node key ${path} belongs to user ${problem.owner}, not to this daemon's user ${uid}: that user may have ` +
      `put in a key of their own; move it away to create a new identity (or chown it, if it is yours)`;
  }
  if (problem) {
    return `Node key ${path} has mode ${problem.mode}: other users of this host may have copied this node's identity; ` +
      `move it away to create a new one (or, if no one else could have read it, chmod 600 it)`;
  }
  return undefined;
}

/** Loads the node's key pair from `dir`, creating it (mode 0600) on first start; refuses a key others may read. */
export async function loadOrCreateIdentity(dir: string): Promise<Identity> {
  const path = `${dir}/${KEY_FILE}`;
  let text: string | undefined;
  try {
    text = await Deno.readTextFile(path);
    const unsafe = unsafeKeyFile(await Deno.stat(path), path);
    if (unsafe) throw new Deno.errors.PermissionDenied(unsafe);
  } catch (e) {
    if (e instanceof Deno.errors.PermissionDenied && (e as Error).message.startsWith("Node key ")) throw e;
    if (!(e instanceof Deno.errors.NotFound)) {
      throw new Error(`Cannot read node key ${path}: ${(e as Error).message}`, { cause: e });
    }
  }
  if (text !== undefined) {
    try {
      const file = JSON.parse(text) as KeyFile;
      const publicKey = Uint8Array.from(atob(file.publicKey), (c) => c.charCodeAt(0));
      const pkcs8 = Uint8Array.from(atob(file.privateKey), (c) => c.charCodeAt(0));
      const privateKey = await crypto.subtle.importKey("pkcs8", pkcs8, { name: "Ed25519" }, false, ["sign"]);
      if (publicKey.length !== 32) throw new RangeError("public key is not 32 bytes");
      return { id: nodeIdOf(publicKey), publicKey, privateKey, pkcs8, created: false };
    } catch (e) {
      throw new Error(
        `Node key ${path} is corrupt (${(e as Error).message}); move it away to create a new identity`,
        { cause: e },
      );
    }
  }
  const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"]) as CryptoKeyPair;
  const publicKey = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", pair.privateKey));
  const file: KeyFile = {
    version: 1,
    publicKey: btoa(String.fromCharCode(...publicKey)),
    privateKey: btoa(String.fromCharCode(...pkcs8)),
  };
  try {
    await Deno.writeTextFile(path, JSON.stringify(file) + "\n", { mode: 0o600, createNew: true });
  } catch (e) {
    throw new Error(`Cannot write node key ${path}: ${(e as Error).message}`, { cause: e });
  }
  return { id: nodeIdOf(publicKey), publicKey, privateKey: pair.privateKey, pkcs8, created: true };
}
