/**
 * The offer's hashing (files_model.ts hashFile with the size and time the
 * offer states): a file that grew, shrank or was written between its stat
 * and the end of its reading is refused, never offered with a hash of other
 * bytes than the size says.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { hashFile, SourceMoved } from "../../src/node/services/files_model.ts";

async function withFile(bytes: Uint8Array, f: (path: string, info: { size: number; mtime: number }) => Promise<void>) {
  const dir = Deno.makeTempDirSync({ prefix: "offer-hash-" });
  try {
    const path = `${dir}/f.bin`;
    Deno.writeFileSync(path, bytes);
    const st = Deno.statSync(path);
    await f(path, { size: st.size, mtime: st.mtime!.getTime() });
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

const bytes = new Uint8Array(3 * 1024 * 1024 + 17);
for (let i = 0; i < bytes.length; i += 65536) crypto.getRandomValues(bytes.subarray(i, i + 65536));
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

Deno.test("the offer hashes exactly the size it states, with the picture's head", async () => {
  await withFile(bytes, async (path, info) => {
    let head: Uint8Array | undefined;
    assert.equal(await hashFile(path, (h) => head = h, info), sha(bytes));
    assert.deepEqual(head, bytes.subarray(0, head!.length));
  });
});

Deno.test("a file that grew after its stat is refused, not hashed past or short of the size the offer says", async () => {
  await withFile(bytes, async (path, info) => {
    await assert.rejects(
      hashFile(path, undefined, { size: info.size - 100, mtime: info.mtime }),
      (e) => e instanceof SourceMoved && /grew while it was read/.test(e.message),
    );
  });
});

Deno.test("a file cut short after its stat is refused", async () => {
  await withFile(bytes, async (path, info) => {
    await assert.rejects(
      hashFile(path, undefined, { size: info.size + 1024 * 1024, mtime: info.mtime }),
      (e) => e instanceof SourceMoved && /ended early while it was read/.test(e.message),
    );
  });
});

Deno.test("a file written in place (same size, another time) while it was read is refused", async () => {
  await withFile(bytes, async (path, info) => {
    await assert.rejects(
      hashFile(path, undefined, { size: info.size, mtime: info.mtime - 5000 }),
      (e) => e instanceof SourceMoved && /changed while it was read/.test(e.message),
    );
  });
});

Deno.test("without a stated size the whole file is hashed, as before (a resumed .part, IP Messenger)", async () => {
  await withFile(bytes, async (path) => {
    assert.equal(await hashFile(path), sha(bytes));
  });
});
