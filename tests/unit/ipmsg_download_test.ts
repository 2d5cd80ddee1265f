/**
 * A regular file downloaded from an IP Messenger sender (fetchIpmsgFile),
 * against scripted senders, without a daemon: the stream cut anywhere, a
 * sender that ignores the resume offset, sends more or fewer bytes than
 * it offered, stalls, or breaks mid-file, and a disk that fills. What must
 * hold: the .part holds exactly the file offered, or the error says why.
 */
import assert from "node:assert/strict";
import { fetchIpmsgFile, RESUME_OVERLAP, TooMuchError } from "../../src/node/services/ipmsg_resume.ts";
import { RawReader } from "../../src/node/services/ipmsg_file_stream.ts";
import { StreamError } from "../../src/node/services/file_stream.ts";
import { OneFileError } from "../../src/node/services/files_model.ts";
import { mountTmpfs, removeTmpfs, tmpfsUnavailable } from "../support/tmpfs.ts";

/** A connection that gives `bytes` in pieces of `steps` sizes (cycled), then `end` (close, stall or break). */
function scripted(bytes: Uint8Array, steps: number[], end: "close" | "stall" | "break" = "close") {
  let at = 0;
  let k = 0;
  let closed = false;
  let wake: ((e: Error) => void) | undefined;
  const conn = {
    read(buf: Uint8Array): Promise<number | null> {
      if (closed) return Promise.reject(new Error("closed"));
      if (at >= bytes.length) {
        if (end === "close") return Promise.resolve(null);
        if (end === "break") return Promise.reject(new Error("Connection reset by peer (os error 104)"));
        return new Promise((_, reject) => wake = reject);
      }
      const n = Math.min(steps[k++ % steps.length]!, buf.length, bytes.length - at);
      buf.set(bytes.subarray(at, at + n));
      at += n;
      return Promise.resolve(n);
    },
    close() {
      closed = true;
      wake?.(new Error("closed"));
    },
  };
  return conn;
}

function randomBytes(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(b.subarray(i, Math.min(n, i + 65536)));
  return b;
}

/** Fetches `file` into `part` from a sender that answers each request with `answer(offset)`. */
function fetchFrom(
  part: string,
  size: number,
  answer: (offset: number) => ReturnType<typeof scripted>,
  stallMs = 30_000,
) {
  const asked: number[] = [];
  const done = fetchIpmsgFile({
    part,
    size,
    request: (offset) => {
      asked.push(offset);
      const conn = answer(offset);
      return Promise.resolve({
        reader: new RawReader(conn as unknown as Deno.Conn, stallMs),
        close: () => conn.close(),
      });
    },
    position: () => {},
    onBytes: () => {},
  });
  return { done, asked };
}

const SIZE = 3 * 1024 * 1024 + 12_345;

/** Runs `fn` in a fresh temporary folder, removed after whatever happened. */
async function inTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = Deno.makeTempDirSync();
  try {
    await fn(dir);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

Deno.test("an IP Messenger download is exactly the file however the sender cuts its stream", () =>
  inTempDir(async (dir) => {
    const file = randomBytes(SIZE);
    for (const steps of [[8192], [1], [7, 65536, 1_000_000, 3], [4 * 1024 * 1024]]) {
      const part = `${dir}/f${steps.join("-")}.part`;
      // 1-byte reads of 3 MiB are slow: that case gets a smaller file, cut the same way.
      const bytes = steps[0] === 1 ? file.subarray(0, 70_001) : file;
      const { done } = fetchFrom(part, bytes.length, () => scripted(bytes, steps));
      assert.equal(await done, "whole");
      assert.deepEqual(Deno.readFileSync(part), bytes, `cut in ${steps.join(", ")}`);
    }
  }));

Deno.test("a resumed download from a sender that ignores the offset (iptux) rewrites the .part from byte 0, and one that honours it appends", () =>
  inTempDir(async (dir) => {
    const file = randomBytes(SIZE);
    for (const honours of [false, true]) {
      const part = `${dir}/${honours}.part`;
      const have = 1_500_000;
      Deno.writeFileSync(part, file.subarray(0, have));
      const { done, asked } = fetchFrom(part, SIZE, (offset) => scripted(file.subarray(honours ? offset : 0), [8192]));
      assert.equal(await done, honours ? "resumed" : "from-start");
      assert.deepEqual(asked, [have - RESUME_OVERLAP]);
      assert.deepEqual(Deno.readFileSync(part), file);
    }
  }));

Deno.test("a sender that sends more than it offered fails the file; fewer, a stall or a break mid-file is a stream error, never a whole file", () =>
  inTempDir(async (dir) => {
    const file = randomBytes(SIZE);
    const more = new Uint8Array(SIZE + 1);
    more.set(file);
    await assert.rejects(fetchFrom(`${dir}/a.part`, SIZE, () => scripted(more, [65536])).done, TooMuchError);
    // More in the very read that brings the last offered bytes.
    await assert.rejects(fetchFrom(`${dir}/b.part`, SIZE, () => scripted(more, [SIZE + 1])).done, TooMuchError);
    const short = fetchFrom(`${dir}/c.part`, SIZE, () => scripted(file.subarray(0, SIZE - 10), [65536])).done;
    await assert.rejects(
      short,
      (e) => e instanceof StreamError && e.message.includes(`after ${SIZE - 10} of ${SIZE} bytes`),
    );
    const stalled = fetchFrom(
      `${dir}/d.part`,
      SIZE,
      () => scripted(file.subarray(0, 2_000_000), [65536], "stall"),
      300,
    );
    await assert.rejects(stalled.done, (e) => e instanceof StreamError && e.kind === "stalled");
    const broke = fetchFrom(`${dir}/e.part`, SIZE, () => scripted(file.subarray(0, 2_000_000), [65536], "break")).done;
    await assert.rejects(broke, (e) => e instanceof StreamError && /connection broke/.test(e.message));
    // What came before the stall is in the .part, whole: a later attempt resumes from it.
    assert.deepEqual(Deno.readFileSync(`${dir}/d.part`), file.subarray(0, 2_000_000));
  }));

Deno.test({
  name: "a disk that fills mid-download fails that file with the reason (OneFileError), and nothing is left unhandled",
  ignore: tmpfsUnavailable !== undefined,
  fn: async () => {
    const dir = Deno.makeTempDirSync();
    await mountTmpfs(dir, "4m");
    try {
      // 4 MiB of room, a 6 MiB file: the disk fills while the socket keeps bringing bytes.
      const file = randomBytes(6 * 1024 * 1024);
      const { done } = fetchFrom(`${dir}/big.part`, file.length, () => scripted(file, [300_000]));
      await assert.rejects(done, (e) => e instanceof OneFileError && /No space left|os error 28/.test(e.message));
    } finally {
      await removeTmpfs(dir);
    }
  },
});
