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
