/**
 * A folder of many small files, fetched with several requests in flight
 * (files_pipeline.ts), and their rows stored in batches: the receiver
 * killed (kill -9) mid-way, then the sender, each restarted; every file
 * arrives once, checked by SHA-256, under its own name (none fetched twice,
 * none left as a `.part`, none renamed to "name (1)" because a batch of rows
 * was lost), hostile names made safe as before. And a previous version
 * (main before pipelining) either way: one request at a time, same result.
 */
import assert from "node:assert/strict";
import type { TransferJson } from "../../src/api/types.ts";
import { freeUdpPort, startLoopbackDaemon, tempDataDir, until } from "../support/daemon_process.ts";
import { api, cleanUp, fastDir, hashes, made, offeredFolder, waitState } from "../support/transfer_files.ts";

/** main before requests were pipelined: a previous version, which answers and asks one file at a time. */
const PREVIOUS = "c189423";

/** Files in place under `dir` (recursively), by count: a `.part` (a file under way) is not one, but f1.bin.part is. */
function count(dir: string): number {
  let n = 0;
  for (const e of Deno.readDirSync(dir)) {
    n += e.isDirectory ? count(`${dir}/${e.name}`) : e.name.endsWith(".part") && e.name !== "f1.bin.part" ? 0 : 1;
  }
  return n;
}

/** A folder `many` of `n` files of 4 KiB, each different, and some names a receiver must not take as they are. */
async function manyFiles(src: string, n: number): Promise<void> {
  await Deno.mkdir(`${src}/many/sub`, { recursive: true });
  const four = crypto.getRandomValues(new Uint8Array(4096));
  for (let i = 0; i < n; i++) {
    four[0] = i & 0xff;
    four[1] = i >> 8;
    await Deno.writeFile(`${src}/many/${i % 10 === 0 ? "sub/" : ""}f${i}.bin`, four);
  }
  // A name that looks like a download under way, one with a line break, one with a leading dot-dot.
  for (const name of ["f1.bin.part", "two\nlines.txt", "..hidden", "名字.txt"]) {
    await Deno.writeTextFile(`${src}/many/${name}`, name);
  }
}

/** The files of `many` as they arrived: each with its SHA-256 in src, no other file, no .part. */
async function arrived(src: string, downloads: string): Promise<void> {
  const want = await hashes(`${src}/many`);
  const got = await hashes(`${downloads}/many`);
  // The receiver's safe names (a line break is not kept): each file is matched by its SHA-256, once.
  const left = new Map<string, number>();
  for (const h of Object.values(want)) left.set(h, (left.get(h) ?? 0) + 1);
  for (const [p, h] of Object.entries(got)) {
    assert.ok(!p.endsWith(".part") || p === "f1.bin.part", `a .part left behind: ${p}`);
    assert.ok(!/ \(\d+\)/.test(p), `a file under a second name: ${p}`);
    const n = left.get(h);
    assert.ok(n, `${p} is no file of the offer, or came twice`);
    left.set(h, n - 1);
  }
  assert.equal(Object.keys(got).length, Object.keys(want).length, "as many files as offered");
}

Deno.test("many small files, pipelined: the receiver killed (kill -9) mid-way, then the sender; each file arrives once, whole, under its own name", async () => {
  const port = freeUdpPort();
  const src = await fastDir("lanchat-src-");
  const downloads = await fastDir("lanchat-dl-");
  const aDir = tempDataDir();
  const bDir = tempDataDir();
  made.push(aDir, bDir);
  const n = 3000;
  const startA = () => startLoopbackDaemon(port, "alice", { dataDir: aDir }).started();
  const startB = () =>
    startLoopbackDaemon(port, "bob", {
      dataDir: bDir,
      extra: ["--downloads", downloads, "--accept-files", "always", "--file-retry", "50ms"],
    }).started();
  try {
    await manyFiles(src, n);
    let a = await startA();
    let b = await startB();
    await a.joined(b.id, 5000);
    const id = (await api<TransferJson>(a, "/files", { to: "bob", paths: [`${src}/many`] })).id;
    // The receiver killed with some files in place (their rows perhaps not stored yet), others to come.
    await until("a tenth in place", () => {
      try {
        return Promise.resolve(count(`${downloads}/many`) > n / 10);
      } catch {
        return Promise.resolve(false);
      }
    }, 120_000);
    await b.kill();
    const inPlace = count(`${downloads}/many`);
    assert.ok(inPlace < n, `killed mid-way (${inPlace} files there)`);
    b = await startB();
    await b.joined(a.id, 10_000);
    // Then the sender, once more have come.
    await until("half in place", () => Promise.resolve(count(`${downloads}/many`) > n / 2), 120_000);
    await a.kill();
    a = await startA();
    const done = await waitState(b, id, "done", 180_000);
    assert.equal(done.filesDone, done.files);
    await arrived(src, downloads);
    // Files in place before the receiver's kill were not fetched again: what its second life received is at
    // most what was not there yet (a file in flight resumes from its .part).
    const status = await api<{ files: { bytesReceived: number } }>(b, "/status");
    const offered = Object.keys(await hashes(`${src}/many`)).length;
    assert.ok(
      status.files.bytesReceived <= (offered - inPlace + 1) * 4096,
      `${status.files.bytesReceived} bytes after the restart, with ${inPlace} of ${offered} files in place`,
    );
    await waitState(a, id, "done", 30_000);
  } finally {
    await cleanUp();
  }
});

Deno.test("many small files with a previous version (no pipelining) either way: one request at a time, every file arrives", async () => {
  const old = Deno.makeTempDirSync({ prefix: "lanchat-previous-" });
  made.push(old);
  const repo = new URL("../..", import.meta.url).pathname;
  const archive = await new Deno.Command("sh", {
    args: ["-c", `git -C '${repo}' archive ${PREVIOUS} | tar -x -C '${old}'`],
    stderr: "piped",
  }).output();
  assert.ok(archive.success, new TextDecoder().decode(archive.stderr));
  const port = freeUdpPort();
  const src = await fastDir("lanchat-src-");
  try {
    await manyFiles(src, 300);
    for (const oldSends of [true, false]) {
      const downloads = await fastDir("lanchat-dl-");
      const a = await startLoopbackDaemon(port, "alice", oldSends ? { repo: old } : {}).started(60_000);
      const b = await startLoopbackDaemon(port, "bob", {
        ...(oldSends ? {} : { repo: old }),
        extra: ["--downloads", downloads, "--accept-files", "always"],
      }).started(60_000);
      await a.joined(b.id, 10_000);
      const id = (await api<TransferJson>(a, "/files", { to: "bob", paths: [`${src}/many`] })).id;
      await waitState(b, id, "done", 120_000);
      await arrived(src, downloads);
      await waitState(a, id, "done", 30_000);
      await a.kill();
      await b.kill();
    }
  } finally {
    await cleanUp();
  }
});

Deno.test("a file changed and one deleted at the sender between the offer and its fetch fail alone, saying so; the others arrive", async () => {
  try {
    const { src, downloads, a, b, id } = await offeredFolder(40);
    await Deno.writeTextFile(`${src}/many/f3.bin`, "grown\n", { append: true });
    await Deno.remove(`${src}/many/f7.bin`);
    await api(b, `/transfers/${id}/accept`, {});
    const failed = await waitState(b, id, "failed", 60_000);
    assert.match(
      failed.error ?? "",
      /^2 files of 40 did not come, changed at the sender since it was offered \(the others arrived\): /,
    );
    assert.match(failed.error ?? "", /many\/f3\.bin changed since it was offered/);
    assert.match(failed.error ?? "", /many\/f7\.bin cannot be read any more/);
    // The other 38 arrived, each whole; the two did not, not even as a .part.
    const want = await hashes(`${src}/many`);
    delete want["f3.bin"];
    const got = await hashes(`${downloads}/many`);
    assert.deepEqual(got, want);
    // The sender hears the outcome, with the reason.
    await until("the sender's transfer ends", async () => {
      const t = await api<TransferJson>(a, `/transfers/${id}`);
      return t.state !== "active" && /f3\.bin/.test(t.error ?? "");
    }, 20_000);
  } finally {
    await cleanUp();
  }
});
