/**
 * hostile29: the receiver's downloads folder (a small tmpfs) fills up in the
 * middle of a folder of small files being pipelined. A full disk is not a
 * fault of one file: the transfer should stop once, say the disk is full
 * (not fail hundreds of files one by one, each "could not be written"),
 * and, once there is room, lose nothing (resume, or a clear failure naming
 * the lack of space and the files that came). No `.part` left, no wrong
 * bytes under a final name.
 */
import assert from "node:assert/strict";
import { FilesNode, waitFor } from "../support/files_node.ts";
import { LiarProxy } from "../support/hostile29_liar_proxy.ts";
import { fillUp, mountTmpfs, removeTmpfs, tmpfsUnavailable } from "../support/tmpfs.ts";
import { sha } from "../support/transfer_files.ts";

const N = 300;
const SIZE = 4096;

Deno.test({
  name: "hostile29 disk full mid-folder: stops once with a clear reason, not each remaining file failed on its own",
  ignore: tmpfsUnavailable !== undefined,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const src = Deno.makeTempDirSync({ prefix: "h29-full-src-" });
    const downloads = Deno.makeTempDirSync({ prefix: "h29-full-dl-" });
    await mountTmpfs(downloads, "3m");
    Deno.mkdirSync(`${src}/batch`);
    const shas = new Map<string, string>();
    for (let i = 0; i < N; i++) {
      const bytes = crypto.getRandomValues(new Uint8Array(SIZE));
      const f = `f${String(i).padStart(3, "0")}.bin`;
      Deno.writeFileSync(`${src}/batch/${f}`, bytes);
      shas.set(f, sha(bytes));
    }
    const a = await FilesNode.start("alice", { e2e: false });
    const b = await FilesNode.start("bob", { e2e: false, downloads });
    FilesNode.introduce(a, b);
    let release!: () => void;
    const held = new Promise<void>((r) => release = r);
    let reached!: () => void;
    const atHold = new Promise<void>((r) => reached = r);
    // The answer to file 40 waits (on the first connection) until the disk is full.
    const proxy = new LiarProxy(a.port, async (conn, ans) => {
      if (conn === 0 && ans.file === 40) {
        reached();
        await held;
      }
      return ans.frames;
    });
    b.route.set(a.id, proxy.port);
    try {
      const t = await a.service.offer(b.id, [`${src}/batch`]);
      await atHold;
      await fillUp(`${downloads}/filler`);
      release();
      await waitFor(
        "the transfer to stop",
        () => ["done", "failed", "paused", "waiting"].includes(b.get(t.id)?.state ?? ""),
        60_000,
        () => JSON.stringify(b.get(t.id)),
      );
      await new Promise((r) => setTimeout(r, 1500));
      const end = b.get(t.id)!;
      console.log("state:", end.state, "error:", end.error?.slice(0, 300), "filesDone:", end.filesDone);
      // What is on disk is right.
      const have: string[] = [];
      for (const e of Deno.readDirSync(`${downloads}/batch`)) have.push(e.name);
      const parts = have.filter((n) => n.endsWith(".part"));
      for (const n of have.filter((n) => !n.endsWith(".part"))) {
        assert.equal(sha(Deno.readFileSync(`${downloads}/batch/${n}`)), shas.get(n), `${n} holds wrong bytes`);
      }
      // A full disk says so (not "could not be written" for each of the files left).
      assert.match(end.error ?? "", /space|full|would not fit/i, `the reason names the full disk: ${end.error}`);
      const failedAlone = Number(/^(\d+) files? of/.exec(end.error ?? "")?.[1] ?? 0);
      assert.ok(
        failedAlone < 5,
        `a full disk failed ${failedAlone} files one by one (${end.error?.slice(0, 200)}); .parts: ${parts.length}`,
      );
      // With room again, nothing is lost: what did not come still comes.
      Deno.removeSync(`${downloads}/filler`);
      if (end.state !== "failed") {
        await waitFor(
          "the transfer to end",
          () => ["done", "failed"].includes(b.get(t.id)?.state ?? ""),
          120_000,
          () => JSON.stringify(b.get(t.id)),
        );
        const last = b.get(t.id)!;
        assert.equal(last.state, "done", `with room again it ended ${last.state}: ${last.error}`);
      }
    } finally {
      await proxy.close();
      await a.remove();
      await b.stop();
      await removeTmpfs(downloads);
      await Deno.remove(b.dir, { recursive: true }).catch(() => {});
      await Deno.remove(src, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name:
    "hostile29 disk full mid-folder, the data folder on the same disk: never crashes, and with room again nothing is lost",
  ignore: tmpfsUnavailable !== undefined,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const src = Deno.makeTempDirSync({ prefix: "h29-full-src-" });
    const disk = Deno.makeTempDirSync({ prefix: "h29-full-disk-" });
    await mountTmpfs(disk, "6m");
    const downloads = `${disk}/dl`;
    Deno.mkdirSync(downloads);
    Deno.mkdirSync(`${disk}/data`);
    Deno.mkdirSync(`${src}/batch`);
    const shas = new Map<string, string>();
    for (let i = 0; i < N; i++) {
      const bytes = crypto.getRandomValues(new Uint8Array(SIZE));
      const f = `f${String(i).padStart(3, "0")}.bin`;
      Deno.writeFileSync(`${src}/batch/${f}`, bytes);
      shas.set(f, sha(bytes));
    }
    const a = await FilesNode.start("alice", { e2e: false });
    const b = await FilesNode.start("bob", { e2e: false, downloads, dir: `${disk}/data` });
    FilesNode.introduce(a, b);
    let release!: () => void;
    const held = new Promise<void>((r) => release = r);
    let reached!: () => void;
    const atHold = new Promise<void>((r) => reached = r);
    // The answer to file 40 waits (on the first connection) until the disk is full.
    const proxy = new LiarProxy(a.port, async (conn, ans) => {
      if (conn === 0 && ans.file === 40) {
        reached();
        await held;
      }
      return ans.frames;
    });
    b.route.set(a.id, proxy.port);
    try {
      const t = await a.service.offer(b.id, [`${src}/batch`]);
      await atHold;
      await fillUp(`${disk}/filler`);
      release();
      await waitFor(
        "the transfer to stop",
        () => ["done", "failed", "paused", "waiting"].includes(b.get(t.id)?.state ?? ""),
        60_000,
        () => JSON.stringify(b.get(t.id)),
      );
      await new Promise((r) => setTimeout(r, 1500));
      const end = b.get(t.id)!;
      console.log("state:", end.state, "error:", end.error?.slice(0, 300), "filesDone:", end.filesDone);
      // What is on disk is right.
      const have: string[] = [];
      for (const e of Deno.readDirSync(`${downloads}/batch`)) have.push(e.name);
      assert.deepEqual(have.filter((n) => n.endsWith(".part")), [], "a .part left behind");
      for (const n of have.filter((n) => !n.endsWith(".part"))) {
        assert.equal(sha(Deno.readFileSync(`${downloads}/batch/${n}`)), shas.get(n), `${n} holds wrong bytes`);
      }
      // A full disk says so (not "could not be written" for each of the files left).
      assert.notEqual(end.state, "failed", `a full disk ended the transfer: ${end.error?.slice(0, 300)}`);
      // With room again, nothing is lost: what did not come still comes.
      Deno.removeSync(`${disk}/filler`);
      if (end.state !== "failed") {
        await waitFor(
          "the transfer to end",
          () => ["done", "failed"].includes(b.get(t.id)?.state ?? ""),
          120_000,
          () => JSON.stringify(b.get(t.id)),
        );
        const last = b.get(t.id)!;
        assert.equal(last.state, "done", `with room again it ended ${last.state}: ${last.error}`);
      }
    } finally {
      await proxy.close();
      await a.remove();
      await b.stop();
      await removeTmpfs(disk);

      await Deno.remove(src, { recursive: true }).catch(() => {});
    }
  },
});
