/**
 * How an incoming transfer ends when things go wrong, and what it leaves:
 * a sender that restarted without its offer (a crafted IP Messenger sender
 * that closes every connection, as iptux does; a lanchat sender whose
 * offered file changed or whose transfer is gone) ends `failed` in words
 * within a bounded number of tries and leaves no `.part`; names over 255
 * bytes (IP Messenger and lanchat) arrive cut; a file that cannot be
 * written fails alone while the others arrive; a folder stream 1,000
 * levels deep is refused.
 */
import assert from "node:assert/strict";
import type { TransferJson } from "../../src/api/types.ts";
import { IPMSG_FILE } from "../../src/wire/ipmsg_files.ts";
import { dirHeader } from "../../src/wire/ipmsg_files.ts";
import { MAX_FRUITLESS_TRIES } from "../../src/node/services/files.ts";
import { type DaemonProcess, freeUdpPort, startLoopbackDaemon, tempDataDir, until } from "../support/daemon_process.ts";
import { IpmsgSender } from "../support/ipmsg_sender.ts";
import { api, cleanUp, fastDir, made, sha, sha256File, sparseFile } from "../support/transfer_files.ts";

const enc = new TextEncoder();
/** Runs a daemon that may write no file over 1 MiB (RLIMIT_FSIZE, SIGXFSZ ignored: such writes fail with EFBIG). */
const FILES_UNDER_1_MIB = ["prlimit", "--fsize=1048576", "--", "sh", "-c", 'trap "" XFSZ; exec "$@"', "sh"];
function tempDir(prefix: string): string {
  const dir = Deno.makeTempDirSync({ prefix });
  made.push(dir);
  return dir;
}

async function waitState(d: DaemonProcess, id: string, states: string[], ms: number): Promise<TransferJson> {
  let t: TransferJson | undefined;
  await until(`transfer ${id} to be ${states.join(" or ")}`, async () => {
    t = await api<TransferJson>(d, `/transfers/${id}`).catch(() => undefined);
    return states.includes(t?.state ?? "");
  }, ms).catch((e) => {
    throw new Error(`${e.message}; it is ${JSON.stringify(t)}; its log:\n${d.rawStderr.slice(-12).join("\n")}`);
  });
  return t!;
}

/** Every name under `dir`, recursively (folders end in /). */
function tree(dir: string, rel = ""): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(`${dir}/${rel}`)) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    out.push(e.isDirectory ? `${p}/` : p);
    if (e.isDirectory) out.push(...tree(dir, p));
  }
  return out;
}

/** A daemon with --ipmsg that takes every offer, its downloads folder, and a crafted sender entered to it. */
async function ipmsgReceiver(prefix: string[] = []) {
  const port = freeUdpPort();
  const ipmsgPort = freeUdpPort();
  const downloads = tempDir("lanchat-dl-");
  const dataDir = tempDataDir();
  made.push(dataDir);
  const d = await startLoopbackDaemon(port, "bob", {
    dataDir,
    prefix,
    extra: [
      "--ipmsg",
      "--ipmsg-port",
      String(ipmsgPort),
      "--downloads",
      downloads,
      "--accept-files",
      "always",
      "--keep-free",
      "0",
      "--file-retry",
      "20ms",
    ],
  }).started();
  const tux = IpmsgSender.open();
  await tux.enter(ipmsgPort);
  await until("Tux listed", async () => {
    const peers = await api<{ name: string }[]>(d, "/peers");
    return peers.some((p) => p.name === "Tux");
  }, 10_000);
  return { d, tux, ipmsgPort, downloads };
}

/** The incoming transfer made of the sender's offer. */
async function incoming(d: DaemonProcess): Promise<TransferJson> {
  let t: TransferJson | undefined;
  await until("the offer listed", async () => {
    t = (await api<TransferJson[]>(d, "/transfers")).find((x) => x.direction === "in");
    return t !== undefined;
  }, 10_000);
  return t!;
}

Deno.test("an IP Messenger sender that restarted without its offer (it closes every connection) ends the transfer failed, in words, with no .part left", async () => {
  const { d, tux, ipmsgPort, downloads } = await ipmsgReceiver();
  try {
    const size = 4 * 1024 * 1024;
    const bytes = crypto.getRandomValues(new Uint8Array(65536));
    // The first connection gets a quarter of the file, then the sender "restarts": from then on it knows no
    // offer and closes every connection at once, as iptux 0.8.3 does.
    tux.answer = (req, n) => {
      if (n > 1) return null;
      const out: Uint8Array[] = [];
      for (let at = req.offset; at < size / 4; at += bytes.length) out.push(bytes);
      return out;
    };
    await tux.offer(ipmsgPort, "a file", [{
      id: 0,
      name: "report.pdf",
      size,
      mtime: 1_700_000_000,
      kind: IPMSG_FILE.REGULAR,
    }]);
    const t = await incoming(d);
    const failed = await waitState(d, t.id, ["failed"], 60_000);
    assert.match(failed.error ?? "", /Tux sent nothing in \d+ tries in a row, so it no longer offers this/);
    assert.match(failed.error ?? "", /the sender closed the connection/);
    // Bounded: the first try, then the fruitless ones, and no more.
    assert.equal(tux.requests.length, 1 + MAX_FRUITLESS_TRIES, JSON.stringify(tux.requests));
    assert.ok(tux.requests.slice(1).every((r) => r.offset > 0), "each later try resumed from the .part");
    await until("the .part removed", () => Promise.resolve(tree(downloads).length === 0), 5000)
      .catch(() => assert.fail(`left behind: ${tree(downloads)}`));
  } finally {
    tux.close();
    await cleanUp();
  }
});

Deno.test("names over 255 bytes from an IP Messenger sender arrive cut, and a file that cannot be written fails alone while the others arrive", async () => {
  const { d, tux, ipmsgPort, downloads } = await ipmsgReceiver(FILES_UNDER_1_MIB);
  try {
    const ascii = `${"a".repeat(296)}.txt`; // 300 bytes
    const chinese = `${"文".repeat(90)}.txt`; // 274 bytes
    assert.equal(enc.encode(ascii).length, 300);
    assert.equal(enc.encode(chinese).length, 274);
    const big = new Uint8Array(2 * 1024 * 1024);
    for (let at = 0; at < big.length; at += 65536) big.set(crypto.getRandomValues(new Uint8Array(65536)), at);
    const content: Record<number, Uint8Array> = {
      0: enc.encode("three hundred bytes of name"),
      1: enc.encode("九十个汉字"),
      2: big,
      3: enc.encode("fine"),
    };
    tux.answer = (req) => content[req.fileId]!.subarray(req.offset);
    const names = [ascii, chinese, "big.bin", "ok.txt"];
    await tux.offer(
      ipmsgPort,
      "four files",
      names.map((name, id) => ({
        id,
        name,
        size: content[id]!.length,
        mtime: 1_700_000_000,
        kind: IPMSG_FILE.REGULAR,
      })),
    );
    const t = await incoming(d);
    const failed = await waitState(d, t.id, ["failed", "done"], 60_000);
    assert.equal(failed.state, "failed", JSON.stringify(failed));
    assert.match(
      failed.error ?? "",
      /^1 file of 4 could not be written \(the others arrived\): big\.bin: cannot be written: File too large/,
    );
    assert.equal(failed.filesDone, 3);
    const got = tree(downloads).sort();
    assert.equal(got.length, 3, `got ${JSON.stringify(got)}`);
    for (const name of got) assert.ok(enc.encode(name).length <= 255, `${name.length}: ${name}`);
    const cutAscii = got.find((n) => n.startsWith("aaa"))!;
    const cutChinese = got.find((n) => n.startsWith("文"))!;
    assert.ok(cutAscii.endsWith(".txt") && cutChinese.endsWith(".txt"), "the extension is kept");
    assert.ok([...cutChinese.slice(0, -4)].every((c) => c === "文"), "cut at a character");
    assert.equal(sha(await Deno.readFile(`${downloads}/${cutAscii}`)), sha(content[0]!));
    assert.equal(sha(await Deno.readFile(`${downloads}/${cutChinese}`)), sha(content[1]!));
    assert.equal(await Deno.readTextFile(`${downloads}/ok.txt`), "fine");
    assert.ok(!got.some((n) => n.endsWith(".part")), "no .part left");
    // Each file was asked for (at most twice: the unwritable one is not retried for ever).
    assert.ok(tux.requests.filter((r) => r.fileId === 2).length <= 2, JSON.stringify(tux.requests));
  } finally {
    tux.close();
    await cleanUp();
  }
});

Deno.test("a folder stream 1,000 levels deep is refused (64 at most), and the other files of the offer arrive", async () => {
  const { d, tux, ipmsgPort, downloads } = await ipmsgReceiver();
  try {
    const deep: Uint8Array[] = [];
    for (let i = 0; i < 1000; i++) deep.push(dirHeader(enc.encode(`d${i}`), 0, IPMSG_FILE.DIR, 0));
    deep.push(dirHeader(enc.encode("x.txt"), 1, IPMSG_FILE.REGULAR, 0), enc.encode("x"));
    for (let i = 0; i < 1000; i++) deep.push(dirHeader(enc.encode("."), 0, IPMSG_FILE.RETPARENT, 0));
    tux.answer = (req) => req.mode === "dir" ? deep : enc.encode("beside it").subarray(req.offset);
    await tux.offer(ipmsgPort, "a deep folder", [
      { id: 0, name: "deep", size: 1, mtime: 0, kind: IPMSG_FILE.DIR },
      { id: 1, name: "note.txt", size: 9, mtime: 0, kind: IPMSG_FILE.REGULAR },
    ]);
    const t = await incoming(d);
    const end = await waitState(d, t.id, ["failed", "done"], 60_000);
    assert.equal(end.state, "failed", JSON.stringify(end));
    assert.match(end.error ?? "", /deep: refused: a folder more than 64 folders deep/);
    assert.equal(await Deno.readTextFile(`${downloads}/note.txt`), "beside it");
    await until("the folder's .part removed", () => Promise.resolve(tree(downloads).length === 1), 5000)
      .catch(() => assert.fail(`left behind: ${tree(downloads).slice(0, 5)}`));
  } finally {
    tux.close();
    await cleanUp();
  }
});

/** Two lanchat daemons on loopback; bob takes every offer and retries fast. */
async function lanchatPair(bPrefix: string[] = []) {
  const port = freeUdpPort();
  const downloads = tempDir("lanchat-dl-");
  const aDir = tempDataDir();
  const bDir = tempDataDir();
  made.push(aDir, bDir);
  const startA = (dataDir = aDir) => startLoopbackDaemon(port, "alice", { dataDir }).started();
  const a = await startA();
  const b = await startLoopbackDaemon(port, "bob", {
    dataDir: bDir,
    prefix: bPrefix,
    extra: [
      "--downloads",
      downloads,
      "--accept-files",
      "always",
      "--auto-accept-max",
      "8G",
      "--keep-free",
      "0",
      "--file-retry",
      "20ms",
    ],
  }).started();
  await a.joined(b.id, 5000);
  await b.joined(a.id, 5000);
  return { a, b, downloads, aDir, startA };
}

/** Offers `path` from a to b; freezes a (SIGSTOP) once part of it has reached b's disk, then kills it (kill -9). */
async function killSenderMidFile(a: DaemonProcess, b: DaemonProcess, path: string, part: string): Promise<string> {
  const offered = await api<TransferJson>(a, "/files", { to: "bob", paths: [path] });
  await until("bytes on disk", async () => (await Deno.stat(part).catch(() => undefined))?.size! > 0, 60_000);
  Deno.kill(a.child.pid, "SIGSTOP");
  const size = (await Deno.stat(path)).size;
  assert.ok((await Deno.stat(part)).size < size, "stopped mid-file");
  await a.kill();
  await waitState(b, offered.id, ["paused"], 20_000);
  return offered.id;
}

Deno.test("a lanchat sender back without the offer (its file changed, or its transfer gone) ends the transfer failed, in words, with no .part left", async () => {
  const src = await fastDir("lanchat-src-");
  try {
    const p = await lanchatPair();
    const { b, downloads } = p;
    let a = p.a;
    const size = 512 * 1024 * 1024;

    // The offered file changes while the sender is down.
    await sparseFile(`${src}/one.img`, size);
    const one = await killSenderMidFile(a, b, `${src}/one.img`, `${downloads}/one.img.part`);
    await Deno.writeFile(`${src}/one.img`, enc.encode("more"), { append: true });
    a = await p.startA();
    const changed = await waitState(b, one, ["failed"], 30_000);
    assert.match(changed.error ?? "", /one\.img changed since it was offered/);
    await until("one.img.part removed", () => Promise.resolve(tree(downloads).length === 0), 5000)
      .catch(() => assert.fail(`left behind: ${tree(downloads)}`));

    // The sender comes back with its key but none of its transfers (a new data directory).
    await sparseFile(`${src}/two.img`, size);
    const two = await killSenderMidFile(a, b, `${src}/two.img`, `${downloads}/two.img.part`);
    const fresh = tempDataDir();
    made.push(fresh);
    await Deno.copyFile(`${p.aDir}/node_key.json`, `${fresh}/node_key.json`);
    a = await p.startA(fresh);
    const gone = await waitState(b, two, ["failed"], 30_000);
    assert.match(gone.error ?? "", /^alice no longer offers this \(no such offer\)$/);
    await until("two.img.part removed", () => Promise.resolve(tree(downloads).length === 0), 5000)
      .catch(() => assert.fail(`left behind: ${tree(downloads)}`));
  } finally {
    await cleanUp();
  }
});

Deno.test("a lanchat file whose name is 255 bytes arrives, cut so that its .part fits too", async () => {
  const src = tempDir("lanchat-src-");
  try {
    const { a, b, downloads } = await lanchatPair();
    const name = `${"é".repeat(125)}.bin`; // 254 bytes: 255 is the most a file system takes
    const bytes = crypto.getRandomValues(new Uint8Array(1000));
    await Deno.writeFile(`${src}/${name}`, bytes);
    const offered = await api<TransferJson>(a, "/files", { to: "bob", paths: [`${src}/${name}`] });
    const done = await waitState(b, offered.id, ["done", "failed"], 30_000);
    assert.equal(done.state, "done", JSON.stringify(done));
    const [got] = tree(downloads);
    assert.ok(got!.endsWith(".bin") && enc.encode(got!).length <= 250, got);
    assert.equal(await sha256File(`${downloads}/${got}`), sha(bytes));
  } finally {
    await cleanUp();
  }
});

Deno.test("a lanchat file that cannot be written fails alone: the others of the folder arrive, and the sender is told why", async () => {
  const src = tempDir("lanchat-src-");
  try {
    const { a, b, downloads } = await lanchatPair(FILES_UNDER_1_MIB);
    await Deno.mkdir(`${src}/pack`);
    const big = new Uint8Array(2 * 1024 * 1024);
    for (let at = 0; at < big.length; at += 65536) big.set(crypto.getRandomValues(new Uint8Array(65536)), at);
    await Deno.writeTextFile(`${src}/pack/a.txt`, "first");
    await Deno.writeFile(`${src}/pack/big.bin`, big);
    await Deno.writeTextFile(`${src}/pack/z.txt`, "last");
    const offered = await api<TransferJson>(a, "/files", { to: "bob", paths: [`${src}/pack`] });
    const end = await waitState(b, offered.id, ["done", "failed"], 30_000);
    assert.equal(end.state, "failed", JSON.stringify(end));
    assert.match(
      end.error ?? "",
      /^1 file of 3 could not be written \(the others arrived\): pack\/big\.bin: cannot be written: File too large/,
    );
    assert.equal(await Deno.readTextFile(`${downloads}/pack/a.txt`), "first");
    assert.equal(await Deno.readTextFile(`${downloads}/pack/z.txt`), "last");
    await until(
      "no .part left",
      () => Promise.resolve(tree(downloads).sort().join() === "pack/,pack/a.txt,pack/z.txt"),
      5000,
    )
      .catch(() => assert.fail(`left: ${tree(downloads)}`));
    const told = await waitState(a, offered.id, ["refused"], 10_000);
    assert.match(told.error ?? "", /pack\/big\.bin: cannot be written/);
  } finally {
    await cleanUp();
  }
});
