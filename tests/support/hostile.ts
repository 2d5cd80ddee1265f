/**
 * A hostile host for security tests: forges, replays and floods lanchat
 * datagrams at a daemon. Used in-process (import) and as a program run
 * inside a LAN namespace:
 *
 * ```
 * deno run -A tests/support/hostile.ts forge-hello --victim ID --name NAME --to ADDR:PORT [--key FILE]
 * deno run -A tests/support/hostile.ts replay-hello --port 47474 --from ADDR --to ADDR:PORT
 * deno run -A tests/support/hostile.ts skewed-hello --ahead-ms MS --to ADDR:PORT [--count N] [--name N] [--key FILE]
 * deno run -A tests/support/hostile.ts msg-twice --to-id ID --to ADDR:PORT --text T [--key FILE]
 * deno run -A tests/support/hostile.ts flood [--count N] [--rate R --seconds S] [--sources N] --to ADDR:PORT [--key FILE]
 * deno run -A tests/support/hostile.ts junk --rate R --seconds S --to ADDR:PORT
 * ```
 *
 * `junk` sends junk (20 to 1,200 bytes, half of it random, half starting
 * like a hello) at R datagrams a second for S seconds; run it behind an nftables SNAT rule and it arrives under
 * someone else's source address.
 *
 * Each prints one JSON line saying what it sent.
 */
import { generateKeyPairSync } from "node:crypto";
import { nodeIdOf, NodeSigner } from "../../src/security/signing.ts";
import { newNetworkKeyText, parseNetworkKey, Sealer } from "../../src/security/seal.ts";
import { appendSignature, encodePacket, type Hello, type Packet } from "../../src/wire/mod.ts";

/** A fresh node key pair, as a daemon would make. */
export function newNodeKey(): { id: string; signer: NodeSigner } {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  const x = publicKey.export({ format: "jwk" }).x!;
  const raw = Uint8Array.from(atob(x.replaceAll("-", "+").replaceAll("_", "/") + "="), (c) => c.charCodeAt(0));
  const pkcs8 = new Uint8Array(privateKey.export({ format: "der", type: "pkcs8" }));
  return { id: nodeIdOf(raw), signer: new NodeSigner(pkcs8, raw) };
}

/** A one-fragment message from `from` to `to`, as a sender's messaging layer would make it. */
export function oneFragmentMsg(from: string, to: string, text: string, messageId: string): Packet {
  const payload = new TextEncoder().encode(text);
  return {
    kind: "msg",
    id: from,
    incarnation: 1,
    to,
    messageId,
    seq: 1,
    base: 1,
    sentAt: Date.now(),
    length: payload.length,
    count: 1,
    index: 0,
    retry: 0,
    end: true,
    payload,
  };
}

/** Writes a new network key file (0600) in a fresh temporary directory; returns its path. */
export function writeKeyFile(): string {
  const path = `${Deno.makeTempDirSync({ prefix: "lanchat-test-" })}/group.key`;
  Deno.writeTextFileSync(path, newNetworkKeyText(), { mode: 0o600 });
  return path;
}

export function helloFor(id: string, name: string, port: number): Hello {
  return {
    kind: "hello",
    id,
    incarnation: 1,
    name,
    hostname: "hostile",
    port,
    httpPort: 0,
    version: "0.1.0",
    interval: 2000,
    reply: false,
  };
}

/** Sends a hello signed by `key`, under its own id and the `name` given, to a daemon's unicast port on loopback. */
export async function sendHello(key: { id: string; signer: NodeSigner }, name: string, port: number): Promise<void> {
  const s = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  try {
    await s.send(encodeSigned(helloFor(key.id, name, 40000), key.signer), {
      transport: "udp",
      hostname: "127.0.0.1",
      port,
    });
  } finally {
    s.close();
  }
}

/** Encodes (and signs, for hello and goodbye, when `signer` is given) a packet. */
export function encodeSigned(packet: Packet, signer?: NodeSigner): Uint8Array {
  const bytes = encodePacket(packet);
  return signer && (packet.kind === "hello" || packet.kind === "goodbye")
    ? appendSignature(bytes, signer.publicKey, signer.sign)
    : bytes;
}

function arg(args: string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
}

function target(s: string): Deno.NetAddr {
  const [hostname, port] = s.split(":");
  return { transport: "udp", hostname: hostname!, port: Number(port) };
}

if (import.meta.main) {
  const [mode, ...args] = Deno.args;
  const keyFile = arg(args, "key");
  const sealer = keyFile ? await Sealer.create(parseNetworkKey(Deno.readTextFileSync(keyFile), keyFile)) : undefined;
  const seal = async (b: Uint8Array) => sealer ? await sealer.seal(b, Date.now()) : b;
  const to = target(arg(args, "to") ?? "127.0.0.1:47475");
  const sock = Deno.listenDatagram({ transport: "udp", hostname: "0.0.0.0", port: 0 });
  const myPort = (sock.addr as Deno.NetAddr).port;
  switch (mode) {
    case "forge-hello": {
      // The victim's id and name, but the attacker's key (it has no other).
      const me = newNodeKey();
      const hello = helloFor(arg(args, "victim")!, arg(args, "name") ?? "victim", myPort);
      for (let i = 0; i < 3; i++) await sock.send(await seal(encodeSigned(hello, me.signer)), to);
      console.log(JSON.stringify({ sent: 3 }));
      break;
    }
    case "replay-hello": {
      // Capture a real broadcast hello on the discovery port, then send it again.
      const port = Number(arg(args, "port") ?? 47474);
      const listener = Deno.listenDatagram({ transport: "udp", hostname: "0.0.0.0", port, reuseAddress: true });
      const from = arg(args, "from");
      let captured: Uint8Array;
      while (true) {
        const [bytes, addr] = await listener.receive();
        if (!from || (addr as Deno.NetAddr).hostname === from) {
          captured = bytes;
          break;
        }
      }
      listener.close();
      await new Promise((r) => setTimeout(r, Number(arg(args, "delay") ?? 1000)));
      await sock.send(captured, to);
      console.log(JSON.stringify({ captured: captured.length, replayed: 1 }));
      break;
    }
    case "skewed-hello": {
      // A host whose clock is --ahead-ms off: its signed hello says so, and
      // (with a key) its seal is stamped with that time too.
      const ahead = Number(arg(args, "ahead-ms") ?? 0);
      const me = newNodeKey();
      const hello = { ...helloFor(me.id, arg(args, "name") ?? "skewed", myPort), sentAt: Date.now() + ahead };
      const count = Number(arg(args, "count") ?? 3);
      for (let i = 0; i < count; i++) {
        const bytes = encodeSigned(hello, me.signer);
        await sock.send(sealer ? sealer.seal(bytes, Date.now() + ahead) : bytes, to);
      }
      console.log(JSON.stringify({ sent: count, id: me.id }));
      break;
    }
    case "msg-twice": {
      // A group member's message, sent, then the very same datagram again.
      const me = newNodeKey();
      const messageId = crypto.randomUUID().replaceAll("-", "");
      const bytes = await seal(
        encodePacket(oneFragmentMsg(me.id, arg(args, "to-id")!, arg(args, "text") ?? "hello", messageId)),
      );
      await sock.send(bytes, to);
      await new Promise((r) => setTimeout(r, 500));
      await sock.send(bytes, to);
      console.log(JSON.stringify({ sent: 2, bytes: bytes.length }));
      break;
    }
    case "flood": {
      // Hellos from ever new node ids as fast as the socket takes them (or at
      // --rate per second for --seconds), from --sources loopback addresses
      // (127.0.0.2 …) or from this host's own address.
      const count = Number(arg(args, "count") ?? Infinity);
      const rate = Number(arg(args, "rate") ?? 0);
      const seconds = Number(arg(args, "seconds") ?? Infinity);
      const nSources = Number(arg(args, "sources") ?? 0);
      const sources = nSources > 0
        ? Array.from(
          { length: nSources },
          (_, i) => Deno.listenDatagram({ transport: "udp", hostname: `127.0.0.${2 + i}`, port: 0 }),
        )
        : [sock];
      // 64 real keys (valid signatures); past them, random ids whose key cannot match.
      const keys = Array.from({ length: 64 }, () => newNodeKey());
      const datagrams: Uint8Array[] = [];
      for (let i = 0; i < 256; i++) {
        const k = keys[i % keys.length]!;
        const id = i < keys.length ? k.id : crypto.randomUUID().replaceAll("-", "");
        datagrams.push(encodeSigned(helloFor(id, `flood-${i}`, myPort), k.signer));
      }
      let sent = 0;
      const t0 = performance.now();
      while (sent < count && performance.now() - t0 < seconds * 1000) {
        const batch: Promise<number>[] = [];
        for (let k = 0; k < 32 && sent < count; k++, sent++) {
          // With a key, each one sealed afresh: an insider's flood, not replays.
          const bytes = await seal(datagrams[sent % datagrams.length]!);
          batch.push(sources[sent % sources.length]!.send(bytes, to));
        }
        await Promise.all(batch);
        if (rate > 0) {
          const due = t0 + (sent / rate) * 1000;
          const wait = due - performance.now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        }
      }
      const elapsed = (performance.now() - t0) / 1000;
      for (const s of sources) if (s !== sock) s.close();
      console.log(JSON.stringify({ sent, seconds: elapsed, perSecond: Math.round(sent / elapsed) }));
      break;
    }
    case "junk": {
      const rate = Number(arg(args, "rate") ?? 40_000);
      const seconds = Number(arg(args, "seconds") ?? 5);
      // Half of it random bytes, half starting like a lanchat hello (magic, version, type) and junk after:
      // those spend the sender's discovery budget too, as a hello would.
      const pool = Array.from({ length: 64 }, (_, i) => {
        const bytes = crypto.getRandomValues(new Uint8Array(20 + i * 18));
        if (i % 2 === 1) bytes.set([0x4c, 0x4e, 0x43, 0x48, 1, 1]);
        return bytes;
      });
      let sent = 0;
      const t0 = performance.now();
      while (performance.now() - t0 < seconds * 1000) {
        const batch: Promise<number>[] = [];
        for (let k = 0; k < 64; k++, sent++) batch.push(sock.send(pool[sent % pool.length]!, to).catch(() => 0));
        await Promise.all(batch);
        const wait = t0 + (sent / rate) * 1000 - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
      const elapsed = (performance.now() - t0) / 1000;
      console.log(JSON.stringify({ sent, seconds: elapsed, perSecond: Math.round(sent / elapsed) }));
      break;
    }
    default:
      console.error(`unknown mode ${mode}`);
      Deno.exit(2);
  }
  sock.close();
}
