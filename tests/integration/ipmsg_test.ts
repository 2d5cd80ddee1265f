/**
 * `lanchat daemon --ipmsg` against a raw socket that speaks like FeiQ (GBK,
 * no UTF-8 options), on loopback.
 */
import assert from "node:assert/strict";
import iconv from "iconv-lite";
import type { MessageJson, PeerJson } from "../../src/api/types.ts";
import { decodeIpmsg, IPMSG, IPMSG_OPT, type IpmsgPacket } from "../../src/wire/ipmsg.ts";
import { freeUdpPort, killAll, runCli, startLoopbackDaemon } from "../support/daemon_process.ts";

const gbk = (s: string) => new Uint8Array(iconv.encode(s, "gbk"));
const ascii = (s: string) => new TextEncoder().encode(s);
const cat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};

/** A FeiQ-like client on a loopback socket: records what it receives. */
function fakeFeiq() {
  const sock = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const got: IpmsgPacket[] = [];
  const raw: Uint8Array[] = [];
  let onPacket: ((p: IpmsgPacket) => void) | undefined;
  (async () => {
    const buf = new Uint8Array(65536);
    try {
      while (true) {
        const [b] = await sock.receive(buf);
        raw.push(b.slice());
        const d = decodeIpmsg(b.slice(), "gbk");
        if (d.ok) {
          got.push(d.value);
          onPacket?.(d.value);
        }
      }
    } catch { /* closed */ }
  })();
  return {
    sock,
    got,
    raw,
    send: (bytes: Uint8Array, port: number) => sock.send(bytes, { transport: "udp", hostname: "127.0.0.1", port }),
    onPacket: (f: (p: IpmsgPacket) => void) => onPacket = f,
    waitFor: async (pred: (p: IpmsgPacket) => boolean, ms = 3000) => {
      const end = Date.now() + ms;
      while (Date.now() < end) {
        const p = got.find(pred);
        if (p) return p;
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error(`no such packet; got ${JSON.stringify(got.map((p) => [p.mode, p.extra]))}`);
    },
  };
}

Deno.test("lanchat --ipmsg lists a FeiQ user, stores its GBK message as the right Chinese text, and delivers to it", async () => {
  const port = freeUdpPort();
  const ipmsgPort = freeUdpPort();
  const feiq = fakeFeiq();
  try {
    const d = await startLoopbackDaemon(port, "alice", { extra: ["--ipmsg", "--ipmsg-port", String(ipmsgPort)] })
      .started();
    // FeiQ enters (GBK nickname and group).
    await feiq.send(
      cat(ascii("1_lbt4_0#128#000C29D8B0F6:1700000001:"), gbk("小明"), ascii(":XM-PC:1:"), gbk("小明\0财务部\0")),
      ipmsgPort,
    );
    const ans = await feiq.waitFor((p) => p.mode === IPMSG.ANSENTRY);
    assert.equal(ans.options & IPMSG_OPT.UTF8OPT, 0, "answered in GBK terms");
    const peers: PeerJson[] = await (await fetch(`${d.httpUrl}/peers`)).json();
    const xm = peers.find((p) => p.protocol === "ipmsg")!;
    assert.deepEqual([xm.name, xm.user, xm.group, xm.hostname], ["小明", "小明", "财务部", "XM-PC"]);
    // FeiQ sends a GBK message asking for a receipt.
    await feiq.send(
      cat(
        ascii(`1_lbt4_0:1700000002:`),
        gbk("小明"),
        ascii(`:XM-PC:${IPMSG.SENDMSG | IPMSG_OPT.SENDCHECKOPT}:`),
        gbk("午饭: 一起去吗？\0"),
      ),
      ipmsgPort,
    );
    const recv = await feiq.waitFor((p) => p.mode === IPMSG.RECVMSG);
    assert.deepEqual(recv.extra, ["1700000002"]);
    let inbox: MessageJson[] = [];
    for (let i = 0; i < 50 && inbox.length === 0; i++) {
      inbox = (await (await fetch(`${d.httpUrl}/messages`)).json()).filter((m: MessageJson) => m.direction === "in");
      if (!inbox.length) await new Promise((r) => setTimeout(r, 20));
    }
    assert.deepEqual(inbox.map((m) => [m.text, m.peer.name]), [["午饭: 一起去吗？", "小明"]]);
    // lanchat writes back: FeiQ gets GBK, answers RECVMSG, the API says delivered.
    feiq.onPacket((p) => {
      if (p.mode === IPMSG.SENDMSG) {
        void feiq.send(
          cat(ascii("1_lbt4_0:1700000003:"), gbk("小明"), ascii(`:XM-PC:${IPMSG.RECVMSG}:${p.packetNo}\0`)),
          ipmsgPort,
        );
      }
    });
    const res = await fetch(`${d.httpUrl}/messages?wait=5`, {
      method: "POST",
      body: JSON.stringify({ to: "小明", text: "好的，十二点见" }),
    });
    const sent = await res.json();
    assert.equal(res.status, 200, JSON.stringify(sent));
    assert.equal(sent.status, "delivered");
    const msg = feiq.got.find((p) => p.mode === IPMSG.SENDMSG)!;
    assert.equal(msg.extra[0], "好的，十二点见");
    assert.equal(msg.encoding, "gbk");
    // A text longer than one IP Messenger packet (8 KiB) goes as several messages, not refused, and nothing is lost.
    const long = Array.from({ length: 900 }, (_, i) => `第${i}行 line ${i}`).join("\n");
    const before = feiq.got.filter((p) => p.mode === IPMSG.SENDMSG).length;
    const big = await fetch(`${d.httpUrl}/messages?wait=10`, {
      method: "POST",
      body: JSON.stringify({ to: "小明", text: long }),
    }).catch((e) => {
      throw new Error(`${e.message}: ${d.rawStderr.slice(-6).join("\n")}`);
    });
    assert.equal(big.status, 200, await big.clone().text());
    const parts = feiq.got.filter((p) => p.mode === IPMSG.SENDMSG).slice(before);
    const unique = [...new Map(parts.map((p) => [p.packetNo, p.extra[0]!])).values()];
    assert.ok(unique.length >= 2, `${unique.length} parts`);
    assert.equal(unique.join(""), long);
  } finally {
    feiq.sock.close();
    await killAll();
  }
});

Deno.test("a second lanchat --ipmsg on the same host says the IP Messenger port is taken", async () => {
  const port = freeUdpPort();
  const ipmsgPort = freeUdpPort();
  try {
    await startLoopbackDaemon(port, "first", { extra: ["--ipmsg", "--ipmsg-port", String(ipmsgPort)] }).started();
    const second = startLoopbackDaemon(port, "second", { extra: ["--ipmsg", "--ipmsg-port", String(ipmsgPort)] });
    assert.equal((await second.wait()).code, 1);
    assert.match(
      second.rawStderr.join("\n"),
      new RegExp(
        `UDP port ${ipmsgPort} is in use on this host \\(by IP Messenger, FeiQ, iptux or another lanchat --ipmsg\\)`,
      ),
    );
  } finally {
    await killAll();
  }
});

Deno.test("a flood of IP Messenger entries and messages from one address: 16 peers, 120 messages, a few log lines", async () => {
  const port = freeUdpPort();
  const ipmsgPort = freeUdpPort();
  const entries = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.7", port: 0 });
  const messages = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.8", port: 0 });
  try {
    const d = await startLoopbackDaemon(port, "alice", { extra: ["--ipmsg", "--ipmsg-port", String(ipmsgPort)] })
      .started();
    const to = { transport: "udp" as const, hostname: "127.0.0.1", port: ipmsgPort };
    for (let i = 0; i < 20_000; i++) {
      await entries.send(ascii(`1:${i}:user${i}:host:${IPMSG.BR_ENTRY}:user${i}\0flood\0`), to);
    }
    for (let i = 0; i < 2_000; i++) {
      const cmd = IPMSG.SENDMSG | IPMSG_OPT.SENDCHECKOPT;
      await messages.send(ascii(`1:${100_000 + i}:spammer:host:${cmd}:spam ${i}\0`), to);
    }
    await new Promise((r) => setTimeout(r, 500));
    const peers: PeerJson[] = await (await fetch(`${d.httpUrl}/peers`)).json();
    const fromFlooder = peers.filter((p) => p.addresses.some((a) => a.address === "127.0.0.7"));
    assert.ok(fromFlooder.length <= 16, `${fromFlooder.length} peers from one address`);
    const status = await (await fetch(`${d.httpUrl}/status`)).json();
    const c = status.ipmsg;
    assert.ok(c.dropped["rate-limit"] > 0 && c.dropped["roster-full"] > 0 && c.messagesRefused > 0, JSON.stringify(c));
    assert.ok(c.entries <= 17, "16 from the flooder, 1 the spammer");
    const history: MessageJson[] = await (await fetch(`${d.httpUrl}/messages?limit=10000`)).json();
    const stored = history.filter((m) => m.text.startsWith("spam ")).length;
    assert.ok(stored >= 100 && stored <= 125, `${stored} of 2,000 stored`);
    const joinLines = d.lines.filter((l) => /^IP Messenger peer joined/.test(l.message)).length;
    const floodLines = d.lines.filter((l) => /^Refusing/.test(l.message)).length;
    assert.ok(joinLines <= 17, `${joinLines} join lines`);
    assert.ok(floodLines >= 1 && floodLines <= 6, `${floodLines} flood lines:\n${d.rawStderr.join("\n")}`);
  } finally {
    entries.close();
    messages.close();
    await killAll();
  }
});

Deno.test("sealed messages with an IP Messenger user both ways, a group that has one as a member, and files it discards", async () => {
  const port = freeUdpPort();
  const ipmsgPort = freeUdpPort();
  const tux = fakeFeiq();
  try {
    const d = await startLoopbackDaemon(port, "alice", { extra: ["--ipmsg", "--ipmsg-port", String(ipmsgPort)] })
      .started();
    const bob = await startLoopbackDaemon(port, "bob").started();
    await d.joined(bob.id, 5000);
    const http = d.httpUrl.replace("http://", "");
    const entry = IPMSG.BR_ENTRY | IPMSG_OPT.CAPUTF8OPT | IPMSG_OPT.UTF8OPT;
    await tux.send(ascii(`1_iptux 0.8.3:100:tux:vm:${entry}:Tux\0\0icon-tux.png\0utf-8\0`), ipmsgPort);
    await tux.waitFor((p) => p.mode === IPMSG.ANSENTRY);
    // Every message from here on is answered as iptux would: RECVMSG with its packet number.
    tux.onPacket((p) => {
      if (p.mode === IPMSG.SENDMSG) {
        void tux.send(ascii(`1:${p.packetNo}9:tux:vm:${IPMSG.RECVMSG}:${p.packetNo}\0`), ipmsgPort);
      }
    });

    // In: a sealed message is listed closed, opened by "lanchat open", which sends READMSG.
    const sealed = IPMSG.SENDMSG | IPMSG_OPT.SENDCHECKOPT | IPMSG_OPT.SECRETOPT | IPMSG_OPT.READCHECKOPT |
      IPMSG_OPT.UTF8OPT;
    await tux.send(ascii(`1_iptux 0.8.3:4242:tux:vm:${sealed}:the door code is 1234\0`), ipmsgPort);
    await tux.waitFor((p) => p.mode === IPMSG.RECVMSG && p.extra[0] === "4242");
    const list = async () => (await (await fetch(`${d.httpUrl}/messages?peer=Tux`)).json()) as MessageJson[];
    const [closed] = await list();
    assert.deepEqual([closed!.text, closed!.sealed], ["", { opened: false }]);
    const inbox = await runCli(["inbox", "--peer", "Tux", "--http", http]);
    assert.match(inbox.stdout, /Tux: \(a sealed message: open it with "lanchat open [0-9a-f]{12}"/);
    assert.doesNotMatch(inbox.stdout, /door code/, "listing it does not open it");
    assert.equal(tux.got.filter((p) => p.mode === IPMSG.READMSG).length, 0);
    const opened = await runCli(["open", closed!.id.slice(0, 12), "--http", http]);
    assert.equal(opened.code, 0, opened.stderr);
    assert.match(opened.stdout, /Tux: the door code is 1234 {2}\(sealed, opened\)/);
    const read = await tux.waitFor((p) => p.mode === IPMSG.READMSG);
    assert.deepEqual(read.extra, ["4242"]);
    assert.ok(read.options & IPMSG_OPT.READCHECKOPT, "asked, so we ask for the answer too");
    await tux.send(ascii(`1:4244:tux:vm:${IPMSG.ANSREADMSG}:${read.packetNo}\0`), ipmsgPort);
    assert.deepEqual((await list())[0]!.sealed, { opened: true });

    // Out: send --sealed goes with SECRETOPT|READCHECKOPT; iptux's READMSG makes it read.
    const sent = await runCli(["send", "--sealed", "Tux", "meet at 3", "--http", http]);
    assert.equal(sent.code, 0, sent.stdout + sent.stderr);
    const out = await tux.waitFor((p) => p.mode === IPMSG.SENDMSG && p.extra[0] === "meet at 3");
    assert.ok(out.options & IPMSG_OPT.SECRETOPT && out.options & IPMSG_OPT.READCHECKOPT);
    await tux.send(ascii(`1:4245:tux:vm:${IPMSG.READMSG | IPMSG_OPT.READCHECKOPT}:${out.packetNo}\0`), ipmsgPort);
    await tux.waitFor((p) => p.mode === IPMSG.ANSREADMSG && p.extra[0] === "4245");
    const mine = (await list()).find((m) => m.direction === "out")!;
    assert.equal(mine.text, "meet at 3");
    assert.ok(mine.readAt, "read once its reader opened it");
    // A lanchat peer gets read receipts for every message: --sealed is refused, in words.
    const refused = await runCli(["send", "--sealed", "bob", "psst", "--http", http]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /Sealed messages are IP Messenger's; bob uses lanchat/);

    // A group with the IP Messenger user in it: it gets the group's messages as plain ones, named.
    const made = await runCli(["group", "create", "mixed", "bob", "Tux", "--http", http]);
    assert.equal(made.code, 0, made.stderr);
    assert.equal((await runCli(["send", "@mixed", "hello all", "--http", http])).code, 0);
    await tux.waitFor((p) => p.mode === IPMSG.SENDMSG && p.extra[0] === "[mixed] hello all");
    assert.ok(tux.got.some((p) => p.extra[0] === "[mixed] created the group “mixed” with bob, Tux"));
    assert.ok(tux.got.every((p) => !(p.extra[0] ?? "").includes("\u0001")), "no machine line reaches iptux");

    // Files offered to an IP Messenger user who discards them (RELEASEFILES): the transfer ends, refused.
    const dir = Deno.makeTempDirSync();
    await Deno.writeTextFile(`${dir}/notes.txt`, "not wanted");
    const offer = await (await fetch(`${d.httpUrl}/files`, {
      method: "POST",
      body: JSON.stringify({ to: "Tux", paths: [`${dir}/notes.txt`] }),
    })).json();
    const attached = await tux.waitFor((p) => p.mode === IPMSG.SENDMSG && (p.options & IPMSG_OPT.FILEATTACHOPT) !== 0);
    await tux.send(ascii(`1:4300:tux:vm:${IPMSG.RELEASEFILES}:${attached.packetNo}\0`), ipmsgPort);
    let state = "";
    for (let i = 0; i < 100 && state !== "refused"; i++) {
      state = (await (await fetch(`${d.httpUrl}/transfers/${offer.id}`)).json()).state;
      if (state !== "refused") await new Promise((r) => setTimeout(r, 30));
    }
    assert.equal(state, "refused");
    await Deno.remove(dir, { recursive: true });
  } finally {
    tux.sock.close();
    await killAll();
  }
});
