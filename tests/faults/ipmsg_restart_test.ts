/**
 * Fault: an IP Messenger client that restarts and numbers its packets from
 * the start again (iptux does). What must hold: a message acknowledged
 * (RECVMSG) is a message stored; a retransmission is acknowledged again and
 * stored once; a same-numbered packet that says something else is never
 * merged into an earlier one.
 *
 * A crafted client on loopback here; the real iptux restarted between two
 * messages in tests/lan/iptux_restart_test.ts.
 */
import assert from "node:assert/strict";
import type { MessageJson, TransferJson } from "../../src/api/types.ts";
import { decodeIpmsg, IPMSG, IPMSG_OPT, type IpmsgPacket } from "../../src/wire/ipmsg.ts";
import { freeUdpPort, killAll, startLoopbackDaemon } from "../support/daemon_process.ts";

const utf8 = (s: string) => new TextEncoder().encode(s);

/** An iptux-like client (UTF-8) on a loopback socket: records the RECVMSGs it gets. */
function craftedClient(daemonPort: number) {
  const sock = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const got: IpmsgPacket[] = [];
  (async () => {
    const buf = new Uint8Array(65536);
    try {
      while (true) {
        const [b] = await sock.receive(buf);
        const d = decodeIpmsg(b.slice(), "utf-8");
        if (d.ok) got.push(d.value);
      }
    } catch { /* closed */ }
  })();
  const send = (s: string) => sock.send(utf8(s), { transport: "udp", hostname: "127.0.0.1", port: daemonPort });
  const recvmsgs = () => got.filter((p) => p.mode === IPMSG.RECVMSG).length;
  return {
    sock,
    entry: (n: number) =>
      send(`1_iptux 0.8.3:${n}:root:vm:${IPMSG.BR_ENTRY | IPMSG_OPT.UTF8OPT}:root\0\0icon-tux.png\0utf-8\0`),
    recvmsgs,
    /** Sends SENDMSG|SENDCHECKOPT packet `n` and waits for its RECVMSG (the count of RECVMSGs goes up). */
    async message(n: number, text: string, attach?: string) {
      const before = recvmsgs();
      const cmd = IPMSG.SENDMSG | IPMSG_OPT.SENDCHECKOPT | IPMSG_OPT.UTF8OPT | (attach ? IPMSG_OPT.FILEATTACHOPT : 0);
      await send(`1_iptux 0.8.3:${n}:root:vm:${cmd}:${text}\0${attach ? `${attach}\0` : ""}`);
      const end = Date.now() + 10_000;
      while (recvmsgs() === before) {
        if (Date.now() > end) throw new Error(`packet ${n} was never acknowledged`);
        await new Promise((r) => setTimeout(r, 20));
      }
      const ack = got.filter((p) => p.mode === IPMSG.RECVMSG).at(-1)!;
      assert.deepEqual(ack.extra.slice(0, 1), [String(n)]);
    },
  };
}

async function inbox(httpUrl: string): Promise<MessageJson[]> {
  const all: MessageJson[] = await (await fetch(`${httpUrl}/messages?limit=1000`)).json();
  return all.filter((m) => m.direction === "in");
}

Deno.test("fault: a restarted IP Messenger client's packet 21 (a file offer, another text) is stored, not dropped as packet 21 of its first run", async () => {
  const ipmsgPort = freeUdpPort();
  const client = craftedClient(ipmsgPort);
  try {
    const d = await startLoopbackDaemon(freeUdpPort(), "alice", {
      extra: ["--ipmsg", "--ipmsg-port", String(ipmsgPort)],
    }).started();
    // First run: entry, then packet 21, a text; its retransmission (our RECVMSG lost) is answered, stored once.
    await client.entry(1);
    await client.message(21, "first run: hello");
    await client.message(21, "first run: hello");
    // kill -9 and start again: a new BR_ENTRY numbered from the start; packet 21 is now a file offer.
    await client.entry(1);
    await client.message(21, "", "0:report.pdf:2b67:6500000:1:");
    await client.message(21, "", "0:report.pdf:2b67:6500000:1:"); // its retransmission
    // Its BR_ENTRY lost this time: packet 21 says something else again, and that alone makes it a new message.
    await client.message(21, "third run: same number, other words");
    // A restart that sends the very first text again: a new message too.
    await client.entry(1);
    await client.message(21, "first run: hello");

    const acked = client.recvmsgs();
    assert.equal(acked, 6);
    let texts: string[] = [];
    const end = Date.now() + 10_000;
    while (texts.length < 4 && Date.now() < end) {
      texts = (await inbox(d.httpUrl)).map((m) => m.text).sort();
      if (texts.length < 4) await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(
      texts.length,
      4,
      `6 packets acknowledged (2 of them retransmissions), 4 stored: ${JSON.stringify(texts)}`,
    );
    assert.deepEqual(texts.filter((t) => !t.startsWith("(Files")), [
      "first run: hello",
      "first run: hello",
      "third run: same number, other words",
    ]);
    assert.match(texts.find((t) => t.startsWith("(Files"))!, /report\.pdf/);
    const offers: TransferJson[] = await (await fetch(`${d.httpUrl}/transfers`)).json();
    assert.equal(offers.filter((t) => t.direction === "in").length, 1, JSON.stringify(offers));
    const status = await (await fetch(`${d.httpUrl}/status`)).json();
    assert.deepEqual([status.ipmsg.duplicates, status.ipmsg.restarts, status.ipmsg.messagesIn], [2, 2, 4]);
  } finally {
    client.sock.close();
    await killAll();
  }
});

Deno.test("fault: a restarted IP Messenger client offers files again under the same packet number: both offers are listed", async () => {
  const ipmsgPort = freeUdpPort();
  const client = craftedClient(ipmsgPort);
  try {
    const d = await startLoopbackDaemon(freeUdpPort(), "alice", {
      extra: ["--ipmsg", "--ipmsg-port", String(ipmsgPort)],
    }).started();
    await client.entry(1);
    await client.message(21, "", "0:a.txt:5:6500000:1:");
    await client.entry(1);
    await client.message(21, "", "0:b.txt:7:6500001:1:");
    let offers: TransferJson[] = [];
    const end = Date.now() + 10_000;
    while (offers.length < 2 && Date.now() < end) {
      offers = ((await (await fetch(`${d.httpUrl}/transfers`)).json()) as TransferJson[])
        .filter((t) => t.direction === "in");
      if (offers.length < 2) await new Promise((r) => setTimeout(r, 50));
    }
    assert.deepEqual(offers.map((t) => t.names).sort(), [["a.txt"], ["b.txt"]]);
  } finally {
    client.sock.close();
    await killAll();
  }
});
