/**
 * A member of a lanchat group that turns hostile, for the end-to-end tests:
 * it holds a node key, its own X25519 static key and a session table, as a
 * daemon does (and the network key, in a keyed group), announces itself
 * with a signed hello carrying `nk`, and answers handshakes. Then it tries
 * to speak as another member: a clear message under the victim's id (the
 * victim speaks end-to-end: refused as `unencrypted`), and, inside its own
 * session with the target, a message under the victim's id (refused as
 * `impersonation`).
 */
import { E2eSessions } from "../../src/security/e2e_sessions.ts";
import { isE2e, staticIdentityOf, staticKeyText } from "../../src/security/e2e_wire.ts";
import type { Sealer } from "../../src/security/seal.ts";
import { nodeIdOf, NodeSigner } from "../../src/security/signing.ts";
import { encodePacket, type Packet } from "../../src/wire/mod.ts";
import { generateKeyPairSync } from "node:crypto";
import { Buffer } from "node:buffer";
import { encodeSigned, helloFor, oneFragmentMsg } from "./hostile.ts";

export class E2eMember {
  readonly id: string;
  readonly sessions: E2eSessions;
  readonly #signer: NodeSigner;
  readonly #sock: Deno.DatagramConn;
  readonly #sealer?: Sealer;
  #staticKey: string;
  #closed = false;
  #reading: Promise<void>;
  #start = performance.now();

  readonly #host: string;

  /** `where`: the address it binds and the one its peers listen on (loopback; a namespace LAN's otherwise). */
  constructor(sealer?: Sealer, where: { bind: string; host: string } = { bind: "127.0.0.1", host: "127.0.0.1" }) {
    this.#host = where.host;
    const { publicKey, privateKey } = generateKeyPairSync("ed25519");
    const raw = new Uint8Array(Buffer.from(publicKey.export({ format: "jwk" }).x!, "base64url"));
    const pkcs8 = new Uint8Array(privateKey.export({ format: "der", type: "pkcs8" }));
    this.id = nodeIdOf(raw);
    this.#signer = new NodeSigner(pkcs8, raw);
    const identity = staticIdentityOf(pkcs8, raw, this.#signer.sign);
    this.#staticKey = staticKeyText(identity.dh.publicKey);
    this.sessions = new E2eSessions({ identity, incarnation: 1, authorize: () => true });
    this.#sealer = sealer;
    this.#sock = Deno.listenDatagram({ transport: "udp", hostname: where.bind, port: 0 });
    this.#reading = this.#read();
  }

  get port(): number {
    return (this.#sock.addr as Deno.NetAddr).port;
  }

  #now(): number {
    return performance.now() - this.#start;
  }

  async #send(bytes: Uint8Array, port: number, sealed: boolean): Promise<void> {
    const out = sealed && this.#sealer ? this.#sealer.seal(bytes, Date.now()) : bytes;
    await this.#sock.send(out, { transport: "udp", hostname: this.#host, port });
  }

  /** Announces itself to a daemon's unicast port: a signed hello with its static key. */
  async hello(port: number): Promise<void> {
    const hello = { ...helloFor(this.id, "mallory", this.port), staticKey: this.#staticKey };
    await this.#send(encodeSigned(hello, this.#signer), port, true);
  }

  /** Sends `packet` through its own session with the daemon `peerId` (handshake first if needed). */
  async sendInSession(peerId: string, peerStaticKey: Uint8Array, packet: Packet, port: number): Promise<void> {
    this.sessions.send({ id: peerId, staticKey: peerStaticKey }, encodePacket(packet), this.#now());
    await this.#flush(port);
  }

  /** A clear datagram (sealed with the network key when there is one). */
  async sendClear(packet: Packet, port: number): Promise<void> {
    await this.#send(encodePacket(packet), port, true);
  }

  /** A one-fragment message under `from`'s id. */
  static msg(from: string, to: string, text: string): Packet {
    return oneFragmentMsg(from, to, text, crypto.randomUUID().replaceAll("-", ""));
  }

  /** True when a session with `peerId` is up. */
  established(peerId: string): boolean {
    return this.sessions.hasSession(peerId, this.#now());
  }

  #ports = new Map<string, number>();

  async #flush(port?: number): Promise<void> {
    for (const t of this.sessions.drainTransmits()) {
      const to = port ?? this.#ports.get(t.peerId);
      if (to === undefined) continue;
      this.#ports.set(t.peerId, to);
      // Data travels as it is; handshakes are sealed with the network key (as a daemon does).
      await this.#send(t.bytes, to, t.bytes[5] !== 3);
    }
  }

  async #read(): Promise<void> {
    while (!this.#closed) {
      let got: [Uint8Array, Deno.Addr];
      try {
        got = await this.#sock.receive();
      } catch {
        return;
      }
      let bytes = got[0];
      const from = got[1] as Deno.NetAddr;
      if (this.#sealer && !isE2e(bytes)) {
        const r = this.#sealer.open(bytes, Date.now());
        if (!r.ok) continue;
        bytes = r.inner;
      }
      if (!isE2e(bytes)) continue;
      const r = this.sessions.receive(bytes, this.#now());
      if (r.kind === "handshake" && r.reply) await this.#send(r.reply, from.port, true);
      if (r.kind !== "drop") this.#ports.set(r.peerId, from.port);
      await this.#flush();
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#sock.close();
    await this.#reading;
  }
}
