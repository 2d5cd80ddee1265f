/**
 * Fault family: an IP Messenger sender that does not do what GETFILEDATA
 * asks. A crafted sender on loopback (UDP for its entry and offer, TCP on
 * the same port for the file) that ignores the offset and sends from byte
 * 0 (as iptux 0.8.3 does), one that honours it, one that sends more bytes
 * than it offered and one that sends fewer. The receiving lanchat is
 * killed with SIGKILL mid-download (the sender holds the stream at a known
 * point, so the kill is always mid-way) and started again on the same data.
 * A `.part` damaged at its end while lanchat was down is one case more, and
 * a file offered under a name that climbs (`../../escape.bin`) another.
 * What must hold: a file marked done is the file offered (SHA-256 of the
 * original); never done with more or fewer bytes; its transfer says
 * `check: "size"`, and `send-file` to an IP Messenger user says "size
 * checked", never plain "checked" (in the CLI and on the web page).
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { chromium } from "playwright-core";
import type { PeerJson, TransferJson } from "../../src/api/types.ts";
import { decodeIpmsg, IPMSG, IPMSG_OPT } from "../../src/wire/ipmsg.ts";
import { parseFileRequest } from "../../src/wire/ipmsg_files.ts";
import {
  type DaemonProcess,
  freeUdpPort,
  killAll,
  runCli,
  startLoopbackDaemon,
  tempDataDir,
  until,
} from "../support/daemon_process.ts";

const ascii = (s: string) => new TextEncoder().encode(s);
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const MiB = 1024 * 1024;
const concat = (parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};

/** Random bytes that never repeat (so no two 64 KiB windows of the file are equal). */
function randomFile(size: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i += 65536) crypto.getRandomValues(out.subarray(i, Math.min(size, i + 65536)));
  return out;
}

type Mode = "ignore-offset" | "honour-offset" | "more" | "fewer";

/**
 * A crafted IP Messenger sender ("tux", as iptux names itself) on 127.0.0.1:
 * a UDP socket and a TCP listener on the same port. Each GETFILEDATA is
 * answered by `mode`; `holdAt` makes the first answer stop after that many
 * bytes and keep the connection open until `release()`.
 */
function craftedSender(file: Uint8Array, mode: Mode, holdAt?: number) {
  const udp = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const port = (udp.addr as Deno.NetAddr).port;
  const tcp = Deno.listen({ hostname: "127.0.0.1", port });
  const requests: { offset: number; sent: number }[] = [];
  let release = () => {};
  const held = new Promise<void>((r) => release = r);
  const conns = new Set<Deno.Conn>();
  (async () => {
    for await (const conn of tcp) {
      conns.add(conn);
      void serve(conn).catch(() => {}).finally(() => {
        conns.delete(conn);
        try {
          conn.close();
        } catch { /* closed */ }
      });
    }
  })().catch(() => {});
  const write = async (conn: Deno.Conn, b: Uint8Array) => {
    for (let w = 0; w < b.length;) w += await conn.write(b.subarray(w));
  };
  async function serve(conn: Deno.Conn) {
    let head = new Uint8Array();
    const buf = new Uint8Array(4096);
    while (!head.includes(0)) {
      const n = await conn.read(buf);
      if (n === null) return;
      head = concat([head, buf.subarray(0, n)]);
    }
    const d = decodeIpmsg(head.subarray(0, head.indexOf(0) + 1));
    if (!d.ok || d.value.mode !== IPMSG.GETFILEDATA) return;
    const req = parseFileRequest(d.value.extra[0] ?? "")!;
    const record = { offset: req.offset, sent: 0 };
    requests.push(record);
    const from = mode === "ignore-offset" ? 0 : req.offset;
    let body = file.subarray(from);
    if (mode === "more") body = concat([body, randomFile(4096)]);
    if (mode === "fewer") body = body.subarray(0, Math.max(0, body.length - 100_000));
    const first = requests.length === 1 && holdAt !== undefined;
    const stop = first ? holdAt! : body.length;
    for (let at = 0; at < stop; at += 256 * 1024) {
      const chunk = body.subarray(at, Math.min(stop, at + 256 * 1024));
      await write(conn, chunk);
      record.sent += chunk.length;
    }
    if (first) await held;
  }
  const entry = IPMSG.BR_ENTRY | IPMSG_OPT.CAPUTF8OPT | IPMSG_OPT.UTF8OPT;
  return {
    port,
    requests,
    release,
    /** Its BR_ENTRY, to lanchat's IP Messenger port. */
    enter: (to: number) =>
      udp.send(ascii(`1_iptux 0.8.3:${Date.now() % 1e6}:tux:vm:${entry}:Tux\0\0icon-tux.png\0utf-8\0`), {
        transport: "udp",
        hostname: "127.0.0.1",
        port: to,
      }),
    /** A message with `name` attached (file id 0), as packet `packetNo`. */
    offer: (to: number, packetNo: number, name: string) => {
      const cmd = IPMSG.SENDMSG | IPMSG_OPT.SENDCHECKOPT | IPMSG_OPT.FILEATTACHOPT | IPMSG_OPT.UTF8OPT;
      const attach = `0:${name}:${file.length.toString(16)}:${(1700000000).toString(16)}:1:\u0007`;
      return udp.send(ascii(`1_iptux 0.8.3:${packetNo}:tux:vm:${cmd}:here it is\0${attach}\0`), {
        transport: "udp",
        hostname: "127.0.0.1",
        port: to,
      });
    },
    close: () => {
      release();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      udp.close();
      tcp.close();
    },
  };
}

async function transfers(d: DaemonProcess): Promise<TransferJson[]> {
  return await (await fetch(`${d.httpUrl}/transfers`)).json();
}

/** The incoming transfer once it is in one of `states` (bounded wait; the last one seen in the error). */
async function reach(d: DaemonProcess, states: string[], ms = 60_000): Promise<TransferJson> {
  let t: TransferJson | undefined;
  await until(`the transfer to be ${states.join(" or ")}`, async () => {
    t = (await transfers(d)).find((x) => x.direction === "in");
    return t !== undefined && states.includes(t.state);
  }, ms).catch((e) => {
    throw new Error(`${e.message}; last seen ${JSON.stringify(t)}; log:\n${d.rawStderr.slice(-30).join("\n")}`);
  });
  return t!;
}

function partSize(path: string): number {
  try {
    return Deno.statSync(path).size;
  } catch {
    return -1;
  }
}

/**
 * The sender's first answer is held at `holdAt` bytes; lanchat is killed
 * with SIGKILL once its .part has them all, started again on the same data,
 * and the sender enters again: the transfer ends in `done` or `failed`.
 */
async function killMidwayAndResume(
  mode: Mode,
  file: Uint8Array,
  holdAt: number,
  meanwhile?: (part: string) => Promise<void>,
) {
  const ipmsgPort = freeUdpPort();
  const port = freeUdpPort();
  const data = tempDataDir();
  const downloads = Deno.makeTempDirSync({ prefix: "lanchat-dl-" });
  const sender = craftedSender(file, mode, holdAt);
  const args = ["--ipmsg", "--ipmsg-port", String(ipmsgPort), "--downloads", downloads, "--accept-files", "always"];
  try {
    const first = await startLoopbackDaemon(port, "alice", { dataDir: data, extra: args }).started();
    await sender.enter(ipmsgPort);
    await first.waitFor((l) => /^IP Messenger peer joined/.test(l.message), 10_000, "tux to join");
    await sender.offer(ipmsgPort, 4242, "big.bin");
    await until(
      "the .part to hold the bytes sent so far",
      () => Promise.resolve(partSize(`${downloads}/big.bin.part`) === holdAt),
      30_000,
    );
    await first.kill();
    sender.release();
    await meanwhile?.(`${downloads}/big.bin.part`);
    const second = await startLoopbackDaemon(port, "alice", { dataDir: data, extra: args }).started();
    await sender.enter(ipmsgPort);
    const t = await reach(second, ["done", "failed"]);
    return { t, downloads, sender, second };
  } finally {
    sender.close();
    await killAll();
    await Deno.remove(data, { recursive: true }).catch(() => {});
  }
}

Deno.test({
  name:
    "a sender that ignores the GETFILEDATA offset: after kill -9 mid-download the file is the one offered, size checked",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const file = randomFile(8 * MiB + 12345);
    const holdAt = 3 * MiB + 777;
    const { t, downloads, sender } = await killMidwayAndResume("ignore-offset", file, holdAt);
    try {
      assert.equal(t.state, "done", JSON.stringify(t));
      assert.equal(sha(await Deno.readFile(`${downloads}/big.bin`)), sha(file), "the file's SHA-256 is the original's");
      assert.equal(t.check, "size", "IP Messenger has no checksum: the size is what was checked");
      assert.equal(t.transferred, file.length);
      assert.ok(sender.requests.length >= 2 && sender.requests[1]!.offset > 0, JSON.stringify(sender.requests));
      assert.deepEqual([...Deno.readDirSync(downloads)].map((e) => e.name), ["big.bin"]);
    } finally {
      await Deno.remove(downloads, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name: "a sender that honours the GETFILEDATA offset: after kill -9 the download resumes without fetching from zero",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const file = randomFile(8 * MiB + 54321);
    const holdAt = 5 * MiB + 99;
    const { t, downloads, sender } = await killMidwayAndResume("honour-offset", file, holdAt);
    try {
      assert.equal(t.state, "done", JSON.stringify(t));
      assert.equal(sha(await Deno.readFile(`${downloads}/big.bin`)), sha(file));
      assert.equal(t.check, "size");
      // One resume: asked from a little before what the .part held, never from zero.
      assert.equal(sender.requests.length, 2, JSON.stringify(sender.requests));
      const again = sender.requests[1]!;
      assert.ok(again.offset > 0 && again.offset <= holdAt && holdAt - again.offset <= 1 * MiB, JSON.stringify(again));
      assert.equal(again.sent, file.length - again.offset);
    } finally {
      await Deno.remove(downloads, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name:
    "a file that repeats (its start and its end alike) from a sender that ignores offsets is fetched again from zero",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    // All zeros but a marked last byte: the bytes asked for again look like both the .part's start and its end.
    const file = new Uint8Array(6 * MiB);
    file[file.length - 1] = 7;
    const holdAt = 2 * MiB;
    const { t, downloads, sender } = await killMidwayAndResume("ignore-offset", file, holdAt);
    try {
      assert.equal(t.state, "done", JSON.stringify(t));
      assert.equal(sha(await Deno.readFile(`${downloads}/big.bin`)), sha(file));
      // Killed, asked from before the end (ambiguous answer), then from zero.
      assert.deepEqual(sender.requests.map((r) => r.offset), [0, holdAt - 64 * 1024, 0]);
    } finally {
      await Deno.remove(downloads, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name: "a .part whose end was damaged while lanchat was down is fetched again from zero, not appended to",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const file = randomFile(6 * MiB + 1);
    const holdAt = 3 * MiB;
    const { t, downloads, sender } = await killMidwayAndResume("honour-offset", file, holdAt, async (part) => {
      using f = await Deno.open(part, { write: true });
      await f.seek(holdAt - 1000, Deno.SeekMode.Start);
      await f.write(new Uint8Array(1000).fill(0xee));
    });
    try {
      assert.equal(t.state, "done", JSON.stringify(t));
      assert.equal(sha(await Deno.readFile(`${downloads}/big.bin`)), sha(file));
      assert.deepEqual(sender.requests.map((r) => r.offset), [0, holdAt - 64 * 1024, 0]);
    } finally {
      await Deno.remove(downloads, { recursive: true }).catch(() => {});
    }
  },
});

/** One sender, one offer, no kill: what the transfer becomes. */
async function fetchOnce(
  mode: Mode,
  file: Uint8Array,
  watch: (d: DaemonProcess, sender: ReturnType<typeof craftedSender>) => Promise<TransferJson>,
) {
  const ipmsgPort = freeUdpPort();
  const port = freeUdpPort();
  const downloads = Deno.makeTempDirSync({ prefix: "lanchat-dl-" });
  const sender = craftedSender(file, mode);
  const args = ["--ipmsg", "--ipmsg-port", String(ipmsgPort), "--downloads", downloads, "--accept-files", "always"];
  try {
    const d = await startLoopbackDaemon(port, "alice", { extra: args }).started();
    await sender.enter(ipmsgPort);
    await d.waitFor((l) => /^IP Messenger peer joined/.test(l.message), 10_000, "tux to join");
    await sender.offer(ipmsgPort, 4343, "big.bin");
    const t = await watch(d, sender);
    return { t, sender, listing: [...Deno.readDirSync(downloads)].map((e) => e.name) };
  } finally {
    sender.close();
    await killAll();
    await Deno.remove(downloads, { recursive: true }).catch(() => {});
  }
}

Deno.test({
  name: "a sender that sends more bytes than it offered: the transfer fails with the reason, never done",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const file = randomFile(2 * MiB + 3);
    const { t, listing } = await fetchOnce("more", file, (d) => reach(d, ["done", "failed"]));
    assert.equal(t.state, "failed", JSON.stringify(t));
    assert.match(t.error ?? "", /sent more than the 2097155 bytes it offered/);
    assert.ok(!listing.includes("big.bin"), `no file in its final place: ${listing}`);
  },
});

Deno.test({
  name: "a sender that sends fewer bytes than it offered, every time: paused and tried again, never done",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const file = randomFile(2 * MiB + 3);
    const { t, sender, listing } = await fetchOnce("fewer", file, async (d, sender) => {
      // Asked twice at least (the first attempt, and one more after it broke), and still not done.
      await until("a second request", () => Promise.resolve(sender.requests.length >= 2), 60_000);
      return await reach(d, ["paused", "waiting", "done", "failed"]);
    });
    assert.ok(sender.requests.length >= 2, JSON.stringify(sender.requests));
    assert.equal(t.state, "paused", JSON.stringify(t));
    assert.match(t.error ?? "", /closed the connection after \d+ of 2097155 bytes/);
    assert.ok(t.transferred < file.length, JSON.stringify(t));
    assert.ok(!listing.includes("big.bin"), `no file in its final place: ${listing}`);
  },
});

Deno.test({
  name: "send-file to an IP Messenger user says the file was size checked, not checked",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const port = freeUdpPort();
    const ipmsgPort = freeUdpPort();
    const udp = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
    const dir = Deno.makeTempDirSync();
    const bytes = randomFile(300_000);
    await Deno.writeFile(`${dir}/notes.bin`, bytes);
    try {
      const d = await startLoopbackDaemon(port, "alice", { extra: ["--ipmsg", "--ipmsg-port", String(ipmsgPort)] })
        .started();
      const to = { transport: "udp" as const, hostname: "127.0.0.1", port: ipmsgPort };
      const entry = IPMSG.BR_ENTRY | IPMSG_OPT.CAPUTF8OPT | IPMSG_OPT.UTF8OPT;
      await udp.send(ascii(`1_iptux 0.8.3:100:tux:vm:${entry}:Tux\0\0icon-tux.png\0utf-8\0`), to);
      await d.waitFor((l) => /^IP Messenger peer joined/.test(l.message), 10_000, "tux to join");
      // The crafted user answers the offer with RECVMSG, then fetches the file with GETFILEDATA.
      const got = (async () => {
        const buf = new Uint8Array(65536);
        for (;;) {
          const [b] = await udp.receive(buf);
          const p = decodeIpmsg(b.slice());
          if (!p.ok || p.value.mode !== IPMSG.SENDMSG || !(p.value.options & IPMSG_OPT.FILEATTACHOPT)) continue;
          await udp.send(ascii(`1:101:tux:vm:${IPMSG.RECVMSG}:${p.value.packetNo}\0`), to);
          const conn = await Deno.connect({ hostname: "127.0.0.1", port: ipmsgPort });
          const pkt = Number(p.value.packetNo).toString(16);
          await conn.write(ascii(`1:102:tux:vm:${IPMSG.GETFILEDATA}:${pkt}:0:0:\0`));
          const chunks: Uint8Array[] = [];
          for (;;) {
            const n = await conn.read(buf);
            if (n === null) break;
            chunks.push(buf.slice(0, n));
            if (chunks.reduce((k, c) => k + c.length, 0) >= bytes.length) break;
          }
          conn.close();
          return concat(chunks);
        }
      })();
      const http = d.httpUrl.replace("http://", "");
      const sent = await runCli(["send-file", "Tux", `${dir}/notes.bin`, "--wait", "30", "--http", http]);
      assert.equal(sent.code, 0, sent.stdout + sent.stderr);
      assert.equal(sha(await got), sha(bytes));
      assert.match(sent.stdout, /Tux has the file \(.*\), size checked\n$/);
      const json = await runCli(["transfers", "--json", "--http", http]);
      assert.equal((JSON.parse(json.stdout) as TransferJson[])[0]!.check, "size");
    } finally {
      udp.close();
      await killAll();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

const CHROMIUM = "/usr/bin/chromium";
const noChromium = await Deno.stat(CHROMIUM).then(() => undefined, () => `${CHROMIUM} is not installed`);

Deno.test({
  name: "the web page shows a file from an IP Messenger user as done, size checked",
  ignore: noChromium !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const file = randomFile(500_000);
    let row = "";
    const { t } = await fetchOnce("honour-offset", file, async (d) => {
      const done = await reach(d, ["done", "failed"]);
      const tux = ((await (await fetch(`${d.httpUrl}/peers`)).json()) as PeerJson[]).find((p) =>
        p.protocol === "ipmsg"
      )!;
      const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
      try {
        const page = await browser.newPage();
        await page.goto(`${await d.webLink()}#peer=${tux.id}`);
        const transfer = page.locator("#transfers .transfer", { hasText: "big.bin" });
        await transfer.waitFor({ timeout: 15_000 });
        row = await transfer.innerText();
      } finally {
        await browser.close();
      }
      return done;
    });
    assert.equal(t.state, "done", JSON.stringify(t));
    assert.match(row, /— done, size checked/);
  },
});

Deno.test({
  name:
    "a file offered under a hostile name (a path that climbs) lands in the downloads folder under a safe name, whole",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const ipmsgPort = freeUdpPort();
    const data = tempDataDir();
    const root = Deno.makeTempDirSync({ prefix: "lanchat-dl-root-" });
    const downloads = `${root}/dl`;
    const file = randomFile(5 * MiB + 3);
    const sender = craftedSender(file, "ignore-offset");
    const args = ["--ipmsg", "--ipmsg-port", String(ipmsgPort), "--downloads", downloads, "--accept-files", "always"];
    try {
      const d = await startLoopbackDaemon(freeUdpPort(), "alice", { dataDir: data, extra: args }).started();
      await sender.enter(ipmsgPort);
      await d.waitFor((l) => /^IP Messenger peer joined/.test(l.message), 10_000, "tux to join");
      await sender.offer(ipmsgPort, 777, "../../escape.bin");
      const t = await reach(d, ["done", "failed"]);
      assert.equal(t.state, "done", JSON.stringify(t));
      const names = [...Deno.readDirSync(downloads)].map((e) => e.name);
      assert.equal(names.length, 1, JSON.stringify(names));
      assert.ok(!names[0]!.includes("/") && names[0]!.includes("escape.bin"), names[0]);
      assert.equal(sha(await Deno.readFile(`${downloads}/${names[0]}`)), sha(file));
      // Nothing climbed out: the folder above the downloads holds only them.
      assert.deepEqual([...Deno.readDirSync(root)].map((e) => e.name), ["dl"]);
    } finally {
      sender.close();
      await killAll();
      for (const dir of [data, root]) await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
