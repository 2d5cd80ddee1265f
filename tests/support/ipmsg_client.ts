/** A crafted iptux-like IP Messenger client on loopback, for the fault tests. */
import assert from "node:assert/strict";
import { decodeIpmsg, IPMSG, IPMSG_OPT, type IpmsgPacket } from "../../src/wire/ipmsg.ts";

const utf8 = (s: string) => new TextEncoder().encode(s);

/** An iptux-like client (UTF-8) on a loopback socket: records the RECVMSGs it gets. */
export function craftedClient(daemonPort: number) {
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
    got,
    /** Sends SENDMSG|SENDCHECKOPT packet `n` and does not wait. */
    post: (n: number, text: string) =>
      send(`1_iptux 0.8.3:${n}:root:vm:${IPMSG.SENDMSG | IPMSG_OPT.SENDCHECKOPT | IPMSG_OPT.UTF8OPT}:${text}\0`),
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
