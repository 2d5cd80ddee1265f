/**
 * hostile29: the receiver's downloads folder (a small tmpfs) fills up in the
 * middle of a folder of small files being pipelined, with the receiver's
 * data folder elsewhere or on the same disk. A full disk is not a fault of
 * one file: the transfer stops once and says the disk is full (it used to
 * fail the remaining files one by one, each "could not be written", and
 * never bring them back), no `.part` is left and no wrong bytes are kept
 * under a final name, and once there is room every file comes.
 */
import assert from "node:assert/strict";
import { FilesNode, waitFor } from "../support/files_node.ts";
import { LiarProxy } from "../support/hostile29_liar_proxy.ts";
import { fillUp, mountTmpfs, removeTmpfs, tmpfsUnavailable } from "../support/tmpfs.ts";
import { sha } from "../support/transfer_files.ts";

const N = 300;
const SIZE = 4096;

for (const sameDisk of [false, true]) {
  Deno.test({
    name: `hostile29 disk full mid-folder${
      sameDisk ? ", the data folder on the same disk" : ""
    }: stops once with a clear reason, fails no file, and with room again nothing is lost`,
    ignore: tmpfsUnavailable !== undefined,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      const src = Deno.makeTempDirSync({ prefix: "h29-full-src-" });
      const disk = Deno.makeTempDirSync({ prefix: "h29-full-disk-" });
      await mountTmpfs(disk, sameDisk ? "6m" : "3m");
      const downloads = sameDisk ? `${disk}/dl` : disk;
      if (sameDisk) Deno.mkdirSync(downloads);
      if (sameDisk) Deno.mkdirSync(`${disk}/data`);
      Deno.mkdirSync(`${src}/batch`);
      const shas = new Map<string, string>();
      for (let i = 0; i < N; i++) {
        const bytes = crypto.getRandomValues(new Uint8Array(SIZE));
        const f = `f${String(i).padStart(3, "0")}.bin`;
        Deno.writeFileSync(`${src}/batch/${f}`, bytes);
        shas.set(f, sha(bytes));
      }
      const a = await FilesNode.start("alice", { e2e: false });
      const b = await FilesNode.start("bob", { e2e: false, downloads, ...(sameDisk ? { dir: `${disk}/data` } : {}) });
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
        // What is on disk is right.
        const have: string[] = [];
        for (const e of Deno.readDirSync(`${downloads}/batch`)) have.push(e.name);
        assert.deepEqual(have.filter((n) => n.endsWith(".part")), [], "a .part left behind");
        for (const n of have) {
          assert.equal(sha(Deno.readFileSync(`${downloads}/batch/${n}`)), shas.get(n), `${n} holds wrong bytes`);
        }
        // A full disk says so once (not "could not be written" for each of the files left), and ends nothing.
        assert.match(end.error ?? "", /space|full|would not fit/i, `the reason names the full disk: ${end.error}`);
        assert.notEqual(end.state, "failed", `a full disk ended the transfer: ${end.error?.slice(0, 300)}`);
        // With room again, nothing is lost: what did not come still comes.
        Deno.removeSync(`${disk}/filler`);
        await waitFor(
          "the transfer to end",
          () => ["done", "failed"].includes(b.get(t.id)?.state ?? ""),
          120_000,
          () => JSON.stringify(b.get(t.id)),
        );
        const last = b.get(t.id)!;
        assert.equal(last.state, "done", `with room again it ended ${last.state}: ${last.error}`);
      } finally {
        await proxy.close();
        await a.remove();
        await b.stop();
        await removeTmpfs(disk);
        if (!sameDisk) await Deno.remove(b.dir, { recursive: true }).catch(() => {});
        await Deno.remove(src, { recursive: true }).catch(() => {});
      }
    },
  });
}
