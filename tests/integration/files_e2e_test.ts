/**
 * The file stream end-to-end encrypted (Noise IK on the stream, issue 25),
 * on the file service itself with the peers' static keys given as their
 * hellos would carry them (tests/support/files_node.ts), through a proxy
 * that alters the stream: a tampered byte in any frame, a replayed
 * connection, an impostor on either side, a fetcher restarted mid-way, a
 * previous-version peer (marked unencrypted, and refused under
 * --require-encryption), then open and keyed transfers of a folder.
 */
import assert from "node:assert/strict";
import { FilesNode, type FilesNodeOptions, waitFor } from "../support/files_node.ts";
import { TamperProxy } from "../support/tamper_proxy.ts";
import { cleanUp, fastDir, sha, sha256File, sparseFile } from "../support/transfer_files.ts";
import { FrameType } from "../../src/wire/file_frames.ts";
import { noteText, parseNote } from "../../src/protocol/files.ts";
import type { StoredMessage } from "../../src/storage/store.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

async function nodes(a: FilesNodeOptions = {}, b: FilesNodeOptions = {}): Promise<[FilesNode, FilesNode]> {
  const x = await FilesNode.start("alice", a);
  const y = await FilesNode.start("bob", b);
  FilesNode.introduce(x, y);
  return [x, y];
}

/** Runs `fn` with alice and bob started with these options, and removes them after. */
async function withPair(
  ao: FilesNodeOptions,
  bo: FilesNodeOptions,
  fn: (a: FilesNode, b: FilesNode) => Promise<void>,
): Promise<void> {
  const [a, b] = await nodes(ao, bo);
  try {
    await fn(a, b);
  } finally {
    await a.remove();
    await b.remove();
  }
}

/** {@link withPair} with bob's fetches going through a proxy that alters the stream when told. */
function withProxy(fn: (a: FilesNode, b: FilesNode, proxy: TamperProxy) => Promise<void>): Promise<void> {
  return withPair({}, {}, async (a, b) => {
    const proxy = new TamperProxy(a.port);
    b.route.set(a.id, proxy.port);
    try {
      await fn(a, b, proxy);
    } finally {
      await proxy.close();
    }
  });
}

/** Alice offers `path` to bob; the offer, and bob's side once it has ended. */
async function send(a: FilesNode, b: FilesNode, path: string) {
  const t = await a.service.offer(b.id, [path]);
  return { t, end: await settled(b, t.id) };
}

/** Waits until bob's side of `id` is done or failed, and returns it. */
async function settled(b: FilesNode, id: string, ms = 30_000) {
  await waitFor(
    `transfer ${id} to end`,
    () => ["done", "failed"].includes(b.get(id)?.state ?? ""),
    ms,
    () => JSON.stringify(b.get(id)),
  );
  return b.get(id)!;
}

/** The frames (type and length) at the head of a recorded stream. */
function frames(bytes: Uint8Array): { type: number; length: number }[] {
  const out = [];
  for (let at = 0; at + 5 <= bytes.length;) {
    const length = new DataView(bytes.buffer, bytes.byteOffset + at).getUint32(0);
    out.push({ type: bytes[at + 4]!, length });
    at += 4 + length;
  }
  return out;
}

Deno.test({
  name: "a byte altered anywhere in the stream, either way: tried again or failed, never a wrong file marked done",
  ...opts,
  fn: () =>
    withProxy(async (a, b, proxy) => {
      const src = Deno.makeTempDirSync({ prefix: "lanchat-src-" });
      try {
        const bytes = crypto.getRandomValues(new Uint8Array(65536));
        // Up: the init's length, type, ephemeral key, static key, payload and mac1; the want; the gets; verified.
        const up = [0, 3, 4, 5, 20, 60, 150, 230, 234, 235, 239, 240, 260, 300, 330, 360, 400];
        // Down: the hello's length, type and body; the reply; the welcome; the manifest; a file's head, data, end.
        const down = [0, 3, 4, 10, 40, 70, 80, 85, 100, 130, 160, 200, 250, 300, 400, 600, 5000, 40000, 65600, 65700];
        const cases = [
          ...up.map((at) => ({ direction: "up" as const, at })),
          ...down.map((at) => ({ direction: "down" as const, at })),
        ];
        const outcomes = { clean: 0, retried: 0, failed: 0 };
        for (const [i, c] of cases.entries()) {
          const name = `case-${i}.bin`;
          await Deno.writeFile(`${src}/${name}`, bytes);
          proxy.tamper = { connection: proxy.connections, ...c };
          const first = proxy.connections;
          const t = await a.service.offer(b.id, [`${src}/${name}`]);
          const end = await settled(b, t.id);
          const what = `${c.direction} ${c.at}: ${JSON.stringify(end)}`;
          if (end.state === "done") {
            assert.equal(sha(await Deno.readFile(`${b.downloads}/${name}`)), sha(bytes), what);
            assert.equal(end.encrypted, true, what);
            outcomes[proxy.connections - first > 1 ? "retried" : "clean"]++;
          } else {
            await assert.rejects(Deno.lstat(`${b.downloads}/${name}`), what);
            outcomes.failed++;
          }
        }
        // Every altered byte was caught: no transfer went through on the connection that carried it.
        assert.equal(outcomes.clean, 0, JSON.stringify(outcomes));
        assert.ok(outcomes.retried >= cases.length - 4, JSON.stringify(outcomes));
      } finally {
        await Deno.remove(src, { recursive: true }).catch(() => {});
      }
    }),
});

Deno.test({
  name: "a fetcher's half of a connection replayed, the first frame included: answered, but nothing after it opens",
  ...opts,
  fn: () =>
    withProxy(async (a, b, proxy) => {
      const src = Deno.makeTempFileSync();
      try {
        await Deno.writeFile(src, crypto.getRandomValues(new Uint8Array(10_000)));
        const t = await a.service.offer(b.id, [src]);
        assert.equal((await settled(b, t.id)).state, "done");
        const recorded = proxy.up[0]!;
        assert.deepEqual(frames(recorded).slice(0, 1), [{ type: FrameType.init, length: 231 }]);
        const served = a.service.counters.bytesServed;
        // Replayed whole (the init, the sealed want and gets), and the first frame alone.
        for (const replay of [recorded, recorded.subarray(0, 235)]) {
          const conn = await Deno.connect({ hostname: "127.0.0.1", port: a.port });
          await conn.write(replay);
          const got: number[] = [];
          const buf = new Uint8Array(65536);
          for (;;) {
            const n = await conn.read(buf).catch(() => null);
            if (n === null) break;
            got.push(...buf.subarray(0, n));
            if (replay.length === 235 && frames(new Uint8Array(got)).length >= 2) break;
          }
          conn.close();
          // The server answers the initiation (it cannot tell a replay), with keys only the real fetcher could
          // derive: the replayed want does not open under them, and the connection ends with nothing served.
          assert.deepEqual(frames(new Uint8Array(got)).map((f) => f.type), [FrameType.hello, FrameType.reply]);
        }
        assert.equal(a.service.counters.bytesServed, served);
      } finally {
        await Deno.remove(src).catch(() => {});
      }
    }),
});

Deno.test({
  name: "an impostor is refused on either side: a server without the peer's key, a fetcher the offer was not made to",
  ...opts,
  fn: async () => {
    const [a, b] = await nodes();
    const carol = await FilesNode.start("carol");
    FilesNode.introduce(carol, a);
    FilesNode.introduce(carol, b);
    const src = Deno.makeTempFileSync();
    try {
      await Deno.writeFile(src, new TextEncoder().encode("for bob only"));
      // Carol answers at alice's address (bob's fetch goes to her file port): she cannot read the initiation
      // made for alice's key, nor answer as alice. Bob keeps trying, and gets nothing.
      b.route.set(a.id, carol.port);
      const t = await a.service.offer(b.id, [src]);
      await waitFor(
        "two tries refused",
        () => carol.service.counters.refusedFetches >= 2,
        10_000,
        () => JSON.stringify(b.get(t.id)),
      );
      assert.equal(b.get(t.id)!.state, "waiting");
      assert.equal(carol.service.counters.bytesServed + a.service.counters.bytesServed, 0);
      // Alice back at her address: the transfer goes through.
      b.route.delete(a.id);
      const end = await settled(b, t.id);
      assert.equal(end.state, "done", JSON.stringify(end));
      assert.equal(await Deno.readTextFile(`${b.downloads}/${t.names[0]}`), "for bob only");

      // Carol, with her own key, fetching an offer made to bob (she learnt of it): refused as not hers.
      const u = await a.service.offer(b.id, [src]);
      const note = parseNote(noteText({
        kind: "offer",
        offer: u.id,
        count: 1,
        bytes: 12,
        names: u.names,
        manifest: a.service.find(u.id).manifest,
        expires: Date.now() + 60_000,
      }))!;
      const message = { id: crypto.randomUUID(), peer: a.id, direction: "in", text: noteText(note) } as StoredMessage;
      carol.service.onEvent({ type: "message", message }, performance.now());
      const theirs = await settled(carol, u.id);
      assert.equal(theirs.state, "failed");
      assert.match(theirs.error!, /not made to you/);
    } finally {
      await a.remove();
      await b.remove();
      await carol.remove();
      await Deno.remove(src).catch(() => {});
    }
  },
});

Deno.test({
  name: "a file resumes after the fetcher restarts, then the sender: a fresh handshake each time",
  ...opts,
  fn: () =>
    withProxy(async (a, b, proxy) => {
      const src = await fastDir("lanchat-src-");
      try {
        // Restarts mid-file on both sides. Offsets past 4 GiB and more than 4,096 frames of 1 MiB, end to end between
        // daemons killed -9 on either side: files_test.ts ("a file over 4 GiB (sparse) resumes …"), whose daemons
        // speak end to end now (this one took 2.5 minutes of the suite for the same proof).
        const size = 320 * 1024 ** 2 + 12_345;
        await sparseFile(`${src}/big.img`, size);
        const want = await sha256File(`${src}/big.img`);
        const t = await a.service.offer(b.id, [`${src}/big.img`]);
        await waitFor("a quarter received", () => (b.get(t.id)?.transferred ?? 0) > size / 4, 180_000);
        await b.restart();
        await waitFor("half received", () => (b.get(t.id)?.transferred ?? 0) > size / 2, 180_000);
        await a.restart();
        const end = await settled(b, t.id, 300_000);
        assert.equal(end.state, "done", JSON.stringify(end));
        assert.equal(end.encrypted, true);
        assert.equal(await sha256File(`${b.downloads}/big.img`), want);
        // Resumed from the .part both times, nothing fetched twice.
        assert.ok(b.service.counters.resumed >= 2, `resumed ${b.service.counters.resumed} times`);
        assert.ok(b.service.counters.bytesReceived <= size - size / 4, `${b.service.counters.bytesReceived} received`);
        // Each connection that reached the sender opened with an initiation of its own (a new ephemeral key each
        // time): the first, one after each restart.
        const inits = proxy.up.filter((u) => u && u.length >= 235).map((u) => u.subarray(0, 235));
        assert.ok(inits.length >= 3, `${inits.length} handshakes`);
        for (const i of inits) assert.equal(i[4], FrameType.init);
        assert.equal(new Set(inits.map((i) => sha(i))).size, inits.length);
      } finally {
        await cleanUp();
      }
    }),
});

Deno.test({
  name: "a previous-version peer still transfers either way, marked unencrypted; open and keyed",
  ...opts,
  fn: async () => {
    const src = Deno.makeTempFileSync();
    const bytes = new Uint8Array(3 * 1024 * 1024 + 7);
    for (let i = 0; i < bytes.length; i += 65536) {
      bytes.set(crypto.getRandomValues(new Uint8Array(65536)).subarray(0, bytes.length - i), i);
    }
    await Deno.writeFile(src, bytes);
    const want = await sha256File(src);
    const networkKey = crypto.getRandomValues(new Uint8Array(32));
    try {
      for (const key of [undefined, networkKey]) {
        for (const old of ["alice", "bob"]) {
          await withPair(
            { e2e: old !== "alice", networkKey: key },
            { e2e: old !== "bob", networkKey: key },
            async (a, b) => {
              const { t, end } = await send(a, b, src);
              const what = `${old} old, ${key ? "keyed" : "open"}: ${JSON.stringify(end)}`;
              assert.equal(end.state, "done", what);
              assert.equal(end.encrypted, false, what);
              assert.equal(a.get(t.id)!.encrypted, false, what);
              assert.equal(await sha256File(`${b.downloads}/${t.names[0]}`), want);
            },
          );
        }
      }
    } finally {
      await Deno.remove(src).catch(() => {});
    }
  },
});

Deno.test({
  name: "--require-encryption refuses a previous-version peer with a clear error, serving or fetching; no downgrade",
  ...opts,
  fn: async () => {
    const src = Deno.makeTempFileSync();
    await Deno.writeTextFile(src, "secret");
    try {
      // The serving side requires it; the fetcher is a previous version.
      await withPair({ requireEncryption: true }, { e2e: false }, async (a, b) => {
        const { end } = await send(a, b, src);
        assert.equal(end.state, "failed");
        assert.match(end.error!, /requires end-to-end encryption \(--require-encryption\).*upgrade it/);
        assert.equal(a.service.counters.refusedFetches, 1);
        assert.equal(a.service.counters.bytesServed, 0);
      });
      // The fetching side requires it; the sender is a previous version: it does not even connect.
      await withPair({ e2e: false }, { requireEncryption: true }, async (a, b) => {
        const { end } = await send(a, b, src);
        assert.equal(end.state, "failed");
        assert.match(end.error!, /alice runs a version of lanchat without end-to-end encryption.*--require-encryption/);
        assert.equal(a.service.counters.bytesServed, 0);
      });
      // A fetch in the clear under the id of a peer whose hello carries a key: refused (someone stripping it).
      await withPair({}, {}, async (a, b) => {
        b.keys.delete(a.id);
        const { end } = await send(a, b, src);
        assert.equal(end.state, "failed");
        assert.match(end.error!, /speaks end-to-end encryption: a fetch in the clear is refused/);
      });
    } finally {
      await Deno.remove(src).catch(() => {});
    }
  },
});

Deno.test({
  name: "end-to-end encrypted transfers of a folder, open and in a keyed group, arrive intact and marked so",
  ...opts,
  fn: async () => {
    const src = Deno.makeTempDirSync({ prefix: "lanchat-src-" });
    try {
      await Deno.mkdir(`${src}/project/docs`, { recursive: true });
      const files: Record<string, Uint8Array> = {
        "project/readme.txt": new TextEncoder().encode("hello\n"),
        "project/empty": new Uint8Array(),
        "project/docs/报告.txt": new TextEncoder().encode("中文内容"),
        "project/docs/data.bin": crypto.getRandomValues(new Uint8Array(65536)),
        "project/docs/big.bin": new Uint8Array(5 * 1024 * 1024 + 3).fill(7),
      };
      for (const [p, bytes] of Object.entries(files)) await Deno.writeFile(`${src}/${p}`, bytes);
      for (const networkKey of [undefined, crypto.getRandomValues(new Uint8Array(32))]) {
        await withPair({ networkKey }, { networkKey }, async (a, b) => {
          const { t, end } = await send(a, b, `${src}/project`);
          assert.equal(end.state, "done", JSON.stringify(end));
          assert.equal(end.encrypted, true);
          await waitFor("the sender to hear", () => a.get(t.id)?.state === "done", 5000);
          assert.equal(a.get(t.id)!.encrypted, true);
          for (const [p, bytes] of Object.entries(files)) {
            assert.equal(sha(await Deno.readFile(`${b.downloads}/${p}`)), sha(bytes), p);
          }
        });
      }
    } finally {
      await Deno.remove(src, { recursive: true }).catch(() => {});
    }
  },
});
