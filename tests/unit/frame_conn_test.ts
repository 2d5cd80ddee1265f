/**
 * The file stream's reading end (file_stream.ts FrameConn) against a lying
 * or broken sender over a real loopback socket: a frame longer than agreed,
 * a frame cut in half, a sealed frame altered on the way. Each is a
 * StreamError of its kind, never a hang, a throw of another kind or a
 * buffer grown past the agreed size.
 */
import assert from "node:assert/strict";
import { FrameConn, StreamError } from "../../src/node/services/file_stream.ts";
import { FrameType, MAX_FRAME_BODY } from "../../src/wire/file_frames.ts";
import { StreamCipher } from "../../src/security/file_cipher.ts";
import { concat } from "../../src/security/noise.ts";

/** A connected pair: `evil` writes raw bytes, `fc` reads frames. */
async function pair(): Promise<{ evil: Deno.TcpConn; fc: FrameConn; done: () => void }> {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = l.accept();
  const c = await Deno.connect({ hostname: "127.0.0.1", port: l.addr.port });
  const evil = await accepted;
  l.close();
  const fc = new FrameConn(c, 10_000);
  return {
    evil,
    fc,
    done: () => {
      fc.close();
      try {
        evil.close();
      } catch { /* closed */ }
    },
  };
}

function head(length: number): Uint8Array {
  const h = new Uint8Array(4);
  new DataView(h.buffer).setUint32(0, length);
  return h;
}

async function rejectsWith(p: Promise<unknown>, kind: StreamError["kind"], text: RegExp): Promise<void> {
  await assert.rejects(p, (e) => e instanceof StreamError && e.kind === kind && text.test(e.message));
}

Deno.test("a frame longer than the largest body is refused at its header (nothing is read into memory for it)", async () => {
  const { evil, fc, done } = await pair();
  try {
    await evil.write(head(MAX_FRAME_BODY + 1));
    await rejectsWith(fc.next(), "oversized", new RegExp(`${MAX_FRAME_BODY + 1} bytes`));
  } finally {
    done();
  }
});

Deno.test("a frame longer than what was agreed for this phase (the handshake's control frames) is refused", async () => {
  const { evil, fc, done } = await pair();
  try {
    fc.maxBody = 1000;
    await evil.write(head(1001));
    await rejectsWith(fc.next(), "oversized", /at most 1000/);
  } finally {
    done();
  }
});

Deno.test("a frame cut in half (the sender goes away mid-frame) is a closed stream, not a short frame", async () => {
  const { evil, fc, done } = await pair();
  try {
    fc.readAhead = true;
    const body = new Uint8Array(1 + 100_000);
    body[0] = FrameType.data;
    await evil.write(head(body.length));
    await evil.write(body.subarray(0, 50_000));
    evil.close();
    await rejectsWith(fc.next(), "closed", /closed the connection/);
  } finally {
    done();
  }
});

Deno.test("a sealed data frame altered on the way does not open, and the frame after it is not taken", async () => {
  const { evil, fc, done } = await pair();
  try {
    const key = crypto.getRandomValues(new Uint8Array(32));
    fc.cipher = new StreamCipher(key, "client");
    fc.readAhead = true;
    const server = new StreamCipher(key, "server");
    const frame = (payload: Uint8Array) => {
      const body = new Uint8Array(1 + payload.length);
      body[0] = FrameType.data;
      body.set(payload, 1);
      const sealed = server.seal(body);
      const out = new Uint8Array(4 + sealed.length);
      out.set(head(sealed.length));
      out.set(sealed, 4);
      return out;
    };
    const good = frame(new Uint8Array(70_000).fill(1));
    const bad = frame(new Uint8Array(70_000).fill(2));
    bad[4 + 30_000]! ^= 1;
    const after = frame(new Uint8Array(10).fill(3));
    for (const f of [good, bad, after]) {
      for (let at = 0; at < f.length;) at += await evil.write(f.subarray(at));
    }
    const first = await fc.next();
    assert.equal(first.type, FrameType.data);
    assert.equal(first.payload.length, 70_000);
    assert.equal(first.payload[69_999], 1);
    await rejectsWith(fc.next(), "malformed", /did not open/);
  } finally {
    done();
  }
});

/** A clear frame on the wire: its length, its type, `payload`. */
function clearFrame(type: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + payload.length);
  out.set(head(1 + payload.length));
  out[4] = type;
  out.set(payload, 5);
  return out;
}

/** `n` frames of sizes that vary (some over the buffer, some tiny), each filled with its index. */
function frames(n: number, size: (i: number) => number): Uint8Array[] {
  return Array.from({ length: n }, (_, i) => clearFrame(FrameType.data, new Uint8Array(size(i)).fill(i & 0xff)));
}

async function writeAll(c: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await c.write(bytes.subarray(at));
}

/** Reads `n` frames and checks each is whole, in order, of its size and filled with its index. */
async function expectFrames(fc: FrameConn, n: number, size: (i: number) => number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const f = await fc.next();
    assert.equal(f.type, FrameType.data, `frame ${i}`);
    assert.equal(f.payload.length, size(i), `frame ${i}'s length`);
    assert.ok(f.payload.every((b) => b === (i & 0xff)), `frame ${i}'s bytes`);
  }
}

for (const readAhead of [false, true]) {
  Deno.test(`100 frames in one write come out whole and in order (read ahead: ${readAhead})`, async () => {
    const { evil, fc, done } = await pair();
    try {
      fc.readAhead = readAhead;
      const size = (i: number) => [0, 1, 4096, 100_000, 3, 70_000, 300_000][i % 7]!;
      const writing = writeAll(evil, concat(...frames(100, size)));
      await expectFrames(fc, 100, size);
      await writing;
    } finally {
      done();
    }
  });

  Deno.test(`frames written one byte at a time (every split, headers too) come out whole (read ahead: ${readAhead})`, async () => {
    const { evil, fc, done } = await pair();
    try {
      fc.readAhead = readAhead;
      evil.setNoDelay(true);
      const size = (i: number) => [5, 0, 300, 2][i % 4]!;
      const bytes = concat(...frames(12, size));
      const writing = (async () => {
        for (let at = 0; at < bytes.length; at++) {
          await writeAll(evil, bytes.subarray(at, at + 1));
          // Each byte its own read at the other end (the kernel would join bytes written back to back).
          await new Promise((r) => setTimeout(r, 1));
        }
      })();
      await expectFrames(fc, 12, size);
      await writing;
    } finally {
      done();
    }
  });
}

Deno.test("a big frame's header split across reads, then its body in pieces, is one whole frame", async () => {
  const { evil, fc, done } = await pair();
  try {
    fc.readAhead = true;
    const size = (i: number) => [MAX_FRAME_BODY - 1, 10, MAX_FRAME_BODY - 1][i]!;
    const bytes = concat(...frames(3, size));
    const writing = (async () => {
      let at = 0;
      for (const cut of [2, 3, 500_000, 1_048_600, 1_048_603, bytes.length]) {
        await writeAll(evil, bytes.subarray(at, cut));
        at = cut;
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    await expectFrames(fc, 3, size);
    await writing;
  } finally {
    done();
  }
});

Deno.test("a frame cut in half then closed, after whole frames read in the same read: the whole ones first, then closed", async () => {
  const { evil, fc, done } = await pair();
  try {
    fc.readAhead = true;
    const whole = concat(...frames(3, () => 1000));
    const cut = clearFrame(FrameType.data, new Uint8Array(5000)).subarray(0, 2000);
    await writeAll(evil, concat(whole, cut));
    evil.close();
    await expectFrames(fc, 3, () => 1000);
    await rejectsWith(fc.next(), "closed", /closed the connection/);
  } finally {
    done();
  }
});

Deno.test("a header cut short then closed is a closed stream", async () => {
  const { evil, fc, done } = await pair();
  try {
    await writeAll(evil, head(100).subarray(0, 3));
    evil.close();
    await rejectsWith(fc.next(), "closed", /closed the connection/);
  } finally {
    done();
  }
});

Deno.test("a frame over the limit is refused at its header even when it comes after whole frames in one read", async () => {
  const { evil, fc, done } = await pair();
  try {
    fc.maxBody = 2000;
    await writeAll(evil, concat(...frames(2, () => 100), head(2001), new Uint8Array(50)));
    await expectFrames(fc, 2, () => 100);
    await rejectsWith(fc.next(), "oversized", /at most 2000/);
  } finally {
    done();
  }
});

Deno.test("a stall mid-frame still ends the wait; bytes coming re-arm the deadline", async () => {
  const { evil, fc, done } = await pair();
  try {
    fc.stallMs = 400;
    const bytes = clearFrame(FrameType.data, new Uint8Array(1000).fill(7));
    // Ten pieces, 100 ms apart: the frame takes longer than the deadline, but nothing stalls.
    const writing = (async () => {
      for (let i = 0; i < 10; i++) {
        await writeAll(evil, bytes.subarray(i * 100, (i + 1) * 100));
        await new Promise((r) => setTimeout(r, 100));
      }
      await writeAll(evil, bytes.subarray(1000));
    })();
    const f = await fc.next();
    assert.equal(f.payload.length, 1000);
    await writing;
    // Then half a frame and nothing more: the wait ends, stalled, and the connection is cut.
    await writeAll(evil, clearFrame(FrameType.data, new Uint8Array(1000)).subarray(0, 500));
    await rejectsWith(fc.next(), "stalled", /nothing came for/);
  } finally {
    done();
  }
});

Deno.test("a frame handed out does not change while the next frames are read ahead", async () => {
  const { evil, fc, done } = await pair();
  try {
    fc.readAhead = true;
    for (const size of [100, 100_000, MAX_FRAME_BODY - 1]) {
      const first = clearFrame(FrameType.data, new Uint8Array(size).fill(1));
      await writeAll(evil, first);
      const kept = await fc.next();
      const n = size > 100_000 ? 2 : 20;
      // Frames of other bytes arrive (and are read ahead) while the caller still holds the first.
      const writing = writeAll(evil, concat(...frames(n, () => size).map((f) => f.fill(9, 5))));
      await writing;
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(kept.payload.length, size);
      assert.ok(kept.payload.every((b) => b === 1), `a frame of ${size} bytes changed while the next were read`);
      for (let i = 0; i < n; i++) assert.ok((await fc.next()).payload.every((b) => b === 9));
    }
  } finally {
    done();
  }
});

Deno.test("answers queued go out in one write after what was sent before, sealed in order", async () => {
  const { evil, fc, done } = await pair();
  const key = crypto.getRandomValues(new Uint8Array(32));
  const reader = new FrameConn(evil, 10_000);
  try {
    fc.cipher = new StreamCipher(key, "client");
    reader.cipher = new StreamCipher(key, "server");
    fc.queue([{ type: FrameType.data, payload: new Uint8Array([1]) }, {
      type: FrameType.end,
      payload: new Uint8Array(0),
    }]);
    assert.ok(fc.queuedBytes > 0);
    // Whatever is sent next goes after the queued frames (a send writes them first).
    await fc.send(FrameType.data, new Uint8Array([2]));
    assert.equal(fc.queuedBytes, 0);
    fc.queue([{ type: FrameType.data, payload: new Uint8Array([3]) }]);
    await fc.flush();
    const got = [];
    for (let i = 0; i < 4; i++) {
      const f = await reader.next();
      got.push([f.type, ...f.payload]);
    }
    assert.deepEqual(got, [[FrameType.data, 1], [FrameType.end], [FrameType.data, 2], [FrameType.data, 3]]);
  } finally {
    reader.close();
    done();
  }
});
