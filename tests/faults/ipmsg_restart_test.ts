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
import { craftedClient } from "../support/ipmsg_client.ts";
import { freeUdpPort, killAll, startLoopbackDaemon } from "../support/daemon_process.ts";

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
