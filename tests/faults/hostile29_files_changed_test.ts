/**
 * hostile29: a file replaced at the sender after the offer by one of the
 * same size with its time set back (what `cp -p`, `rsync -t` or a restore
 * from a backup does): the sender's size-and-time check passes, and it
 * sends other bytes. The receiver must keep no wrong bytes, and (as for
 * any file changed at the sender since the offer, issue 29's "fails
 * alone") that file fails alone with a reason that says it is not the
 * file offered, while the others still arrive.
 */
import assert from "node:assert/strict";
import { FilesNode, waitFor } from "../support/files_node.ts";
import { sha } from "../support/transfer_files.ts";

const N = 300;

function random(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let at = 0; at < n; at += 65536) crypto.getRandomValues(out.subarray(at, Math.min(n, at + 65536)));
  return out;
}

for (const size of [4096, 2 * 1024 * 1024]) {
  Deno.test({
    name:
      `hostile29 changed: file 3 (${size} bytes) replaced by another of the same size and time fails alone; the others arrive`,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      const src = Deno.makeTempDirSync({ prefix: "h29-chg-src-" });
      Deno.mkdirSync(`${src}/batch`);
      const shas = new Map<string, string>();
      for (let i = 0; i < N; i++) {
        const bytes = random(i === 3 ? size : 4096);
        Deno.writeFileSync(`${src}/batch/f${i}.bin`, bytes);
        shas.set(`f${i}.bin`, sha(bytes));
      }
      const a = await FilesNode.start("alice");
      const b = await FilesNode.start("bob");
      FilesNode.introduce(a, b);
      try {
        // Offered, then replaced before bob fetches it (bob's node accepts at once: replace right after the offer).
        const path = `${src}/batch/f3.bin`;
        const info = Deno.statSync(path);
        const t = await a.service.offer(b.id, [`${src}/batch`]);
        Deno.writeFileSync(path, random(size));
        Deno.utimeSync(path, info.atime!, info.mtime!);
        await waitFor(
          "the transfer to end",
          () => ["done", "failed"].includes(b.get(t.id)?.state ?? ""),
          60_000,
          () => JSON.stringify(b.get(t.id)),
        );
        const end = b.get(t.id)!;
        const got = new Map<string, string>();
        for (const e of Deno.readDirSync(`${b.downloads}/batch`)) {
          got.set(e.name, sha(Deno.readFileSync(`${b.downloads}/batch/${e.name}`)));
        }
        // Never wrong bytes under the final name, nor a .part.
        assert.notEqual(got.get("f3.bin"), sha(Deno.readFileSync(path)), "the replaced bytes kept");
        assert.ok(![...got.keys()].some((n) => n.endsWith(".part")), `a .part: ${[...got.keys()]}`);
        assert.equal(end.state, "failed", JSON.stringify(end));
        // The others arrived (it fails alone), and the reason names the file.
        const others = [...shas].filter(([n]) => n !== "f3.bin");
        const missing = others.filter(([n, h]) => got.get(n) !== h).map(([n]) => n);
        assert.deepEqual(missing, [], `files that did not arrive because f3 was replaced: ${end.error}`);
        assert.match(end.error ?? "", /f3\.bin/);
        assert.match(end.error ?? "", /^1 file of 300 /, end.error);
      } finally {
        await a.remove();
        await b.remove();
        await Deno.remove(src, { recursive: true }).catch(() => {});
      }
    },
  });
}
