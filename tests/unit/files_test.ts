/**
 * File transfer without sockets: hostile names made safe, the stream's
 * framing cut at any byte, sealed frames that refuse tampering and
 * reordering, the stream's end-to-end handshake (tampering, impostors,
 * replays), the notes carried by messages, and who may fetch what.
 */
import assert from "node:assert/strict";
import {
  collisionKey,
  MAX_NAME_BYTES,
  numbered,
  PART_SUFFIX,
  safeName,
  safePaths,
  safeRelativePath,
} from "../../src/protocol/file_names.ts";
import {
  fetchProof,
  FILES_MARK,
  manifestBytes,
  manifestMismatch,
  MAX_NOTE_NAMES,
  mayFetch,
  noteText,
  parseManifest,
  parseNote,
} from "../../src/protocol/files.ts";
import { frameBody, frameBytes, FrameReader, MAX_FRAME_BODY, splitBody } from "../../src/wire/file_frames.ts";
import { StreamCipher, streamKey } from "../../src/security/file_cipher.ts";
import { generateKeyPairSync } from "node:crypto";
import { type StaticIdentity, staticIdentityOf } from "../../src/security/e2e_wire.ts";
import { answerFileHandshake, finishFileHandshake, startFileHandshake } from "../../src/security/file_handshake.ts";
import { NodeSigner } from "../../src/security/signing.ts";

Deno.test("hostile names become one safe name each, never a path", () => {
  const cases: [string, string][] = [
    ["report.pdf", "report.pdf"],
    ["..", "_"],
    [".", "_"],
    ["...", "_"],
    ["", "_"],
    ["a/b", "a_b"],
    ["a\\b", "a_b"],
    ["C:", "C_"],
    ["evil\u0000.txt", "evil_.txt"],
    ["bell\u0007\u001b[31mred", "bell__[31mred"],
    ["del\u007f", "del_"],
    ["c1\u009bx", "c1_x"],
    ["gnp.exe\u202etxt", "gnp.exe_txt"], // a right-to-left override that makes it read "txt.exe"
    ["isolate\u2066x\u2069", "isolate_x_"],
    ['win<>:"|?*.txt', "win_______.txt"],
    ["CON", "_CON"],
    ["con.txt", "_con.txt"],
    ["NUL.tar.gz", "_NUL.tar.gz"],
    ["com1", "_com1"],
    ["LPT9.log", "_LPT9.log"],
    ["console.log", "console.log"],
    ["trailing. . ", "trailing"],
    ["  leading", "leading"],
    ["e\u0301t\u00e9", "\u00e9t\u00e9"], // NFD é becomes NFC
    ["中文文件名.txt", "中文文件名.txt"],
    ["🎉 party.png", "🎉 party.png"],
  ];
  for (const [input, want] of cases) assert.equal(safeName(input), want, JSON.stringify(input));
});

Deno.test("overlong names are cut to 255 bytes at a character, keeping the extension", () => {
  const long = "数".repeat(200) + ".txt"; // 604 bytes
  const safe = safeName(long);
  assert.ok(new TextEncoder().encode(safe).length <= MAX_NAME_BYTES);
  assert.ok(safe.endsWith(".txt"));
  assert.ok(!safe.includes("\ufffd"));
  const emoji = "😀".repeat(100); // 4 bytes each: no surrogate may be split
  const cut = safeName(emoji);
  assert.ok(new TextEncoder().encode(cut).length <= MAX_NAME_BYTES);
  assert.equal([...cut].every((c) => c === "😀"), true);
  assert.ok(new TextEncoder().encode(numbered(long, 12)).length <= MAX_NAME_BYTES);
  // The .part a download is written to fits too (a 255-byte name made a 260-byte .part: ENAMETOOLONG).
  for (const name of [long, emoji, "a".repeat(300), `${"文".repeat(90)}.txt`, numbered(long, 12)]) {
    assert.ok(new TextEncoder().encode(safeName(name) + PART_SUFFIX).length <= MAX_NAME_BYTES, name);
  }
  assert.ok(numbered(long, 12).endsWith(" (12).txt"));
});

Deno.test("paths never climb: dot-dot, absolute paths and drive letters are dropped, not obeyed", () => {
  assert.deepEqual(safeRelativePath("../../etc/passwd"), ["etc", "passwd"]);
  assert.deepEqual(safeRelativePath("/etc/shadow"), ["etc", "shadow"]);
  assert.deepEqual(safeRelativePath("C:\\Windows\\system32\\x.dll"), ["Windows", "system32", "x.dll"]);
  assert.deepEqual(safeRelativePath("a/./b//c"), ["a", "b", "c"]);
  assert.deepEqual(safeRelativePath("photos/2024/../../../x.jpg"), ["photos", "2024", "x.jpg"]);
  assert.equal(safeRelativePath("../.."), undefined);
  assert.equal(safeRelativePath("/"), undefined);
  assert.equal(safeRelativePath("a/".repeat(40) + "f"), undefined);
});

Deno.test("names that differ only by case or normalization get (1), and a file never takes a folder's name", () => {
  const out = safePaths([
    "Report.pdf",
    "report.PDF",
    "caf\u00e9.txt",
    "cafe\u0301.txt",
    "dir/a.txt",
    "DIR/b.txt",
    "dir",
    "x/../Report.pdf",
  ]);
  assert.deepEqual(out.map((p) => p?.join("/")), [
    "Report.pdf",
    "report (1).PDF",
    "caf\u00e9.txt",
    "caf\u00e9 (1).txt",
    "dir/a.txt",
    "dir/b.txt", // the same folder, whatever its case
    "dir (1)",
    "x/Report.pdf",
  ]);
  const keys = out.map((p) => collisionKey(p!.join("/")));
  assert.equal(new Set(keys).size, keys.length);
});

Deno.test("frames come out whole however the stream is cut, and an oversized length stops the reader", () => {
  const bodies = [
    frameBody(1, new TextEncoder().encode('{"a":1}')),
    frameBody(6, new Uint8Array(5_000).fill(7)),
    frameBody(7, new Uint8Array()),
  ];
  const stream = new Uint8Array(bodies.reduce((n, b) => n + b.length + 4, 0));
  let at = 0;
  for (const b of bodies) {
    stream.set(frameBytes(b), at);
    at += b.length + 4;
  }
  for (const step of [1, 3, 4, 5, 1000, stream.length]) {
    const r = new FrameReader();
    const got: Uint8Array[] = [];
    for (let i = 0; i < stream.length; i += step) {
      r.push(stream.slice(i, i + step));
      for (let f = r.next(); f; f = r.next()) got.push(f.slice());
    }
    assert.equal(got.length, 3, `step ${step}`);
    assert.deepEqual(got.map((g) => splitBody(g)!.type), [1, 6, 7]);
    assert.deepEqual(got[1], bodies[1]);
    assert.equal(r.buffered, 0);
  }
  const bad = new FrameReader();
  const head = new Uint8Array(4);
  new DataView(head.buffer).setUint32(0, MAX_FRAME_BODY + 1);
  bad.push(head);
  assert.equal(bad.next(), undefined);
  assert.match(bad.error!, /at most/);
});

Deno.test("sealed frames open in order only: tampered, replayed, reordered or wrong-key frames do not", () => {
  const key = streamKey(new Uint8Array(32).fill(1), new Uint8Array(32).fill(2), new Uint8Array(32).fill(3));
  const client = new StreamCipher(key, "client");
  const server = new StreamCipher(key, "server");
  const a = client.seal(frameBody(4, new TextEncoder().encode("first")));
  const b = client.seal(frameBody(4, new TextEncoder().encode("second")));
  assert.equal(new TextDecoder().decode(server.open(a)!.subarray(1)), "first");
  assert.equal(server.open(a), undefined, "a replayed frame");
  const s2 = new StreamCipher(key, "server");
  assert.equal(s2.open(b), undefined, "a frame out of order");
  const s3 = new StreamCipher(key, "server");
  const flipped = a.slice();
  flipped[3]! ^= 1;
  assert.equal(s3.open(flipped), undefined, "a flipped bit");
  const other = new StreamCipher(
    streamKey(new Uint8Array(32).fill(9), new Uint8Array(32).fill(2), new Uint8Array(32).fill(3)),
    "server",
  );
  assert.equal(other.open(a), undefined, "another network key");
  // The server's own frames are not taken for the client's (a reflected frame).
  const s4 = new StreamCipher(key, "server");
  const fromServer = s4.seal(frameBody(5, new Uint8Array([1])));
  assert.equal(new StreamCipher(key, "server").open(fromServer), undefined);
  assert.ok(new StreamCipher(key, "client").open(fromServer));
});

Deno.test("a file note round-trips through a message text; anything malformed stays an ordinary message", () => {
  const offer = {
    kind: "offer" as const,
    offer: "0123456789abcdef0123456789abcdef",
    count: 3,
    bytes: 12_345_678,
    names: ["report.pdf", "photos/"],
    manifest: "a".repeat(64),
    expires: 1_800_000_000_000,
  };
  const text = noteText(offer);
  assert.match(text, /^Files offered: report\.pdf, photos\/ \(3 files, 12\.3 MB\)\n/);
  assert.deepEqual(parseNote(text), offer);
  assert.deepEqual(parseNote(noteText({ kind: "received", offer: offer.offer })), {
    kind: "received",
    offer: offer.offer,
  });
  for (
    const bad of [
      "hello",
      `${FILES_MARK}{`,
      `${FILES_MARK}${JSON.stringify({ ...offer, offer: "../x" })}`,
      `${FILES_MARK}${JSON.stringify({ ...offer, count: -1 })}`,
      `${FILES_MARK}${JSON.stringify({ ...offer, manifest: "zz" })}`,
      `${FILES_MARK}${JSON.stringify({ ...offer, names: new Array(50).fill("x") })}`,
      `${FILES_MARK}${JSON.stringify({ ...offer, kind: "steal" })}`,
    ]
  ) assert.equal(parseNote(bad), undefined, bad.slice(0, 60));
});

Deno.test("a manifest is checked entry by entry", () => {
  const files = [{ path: "a.txt", size: 3, mtime: 1, sha256: "b".repeat(64) }];
  assert.deepEqual(parseManifest(manifestBytes(files)), files);
  assert.equal(parseManifest(manifestBytes([{ ...files[0]!, size: -1 }])), undefined);
  assert.equal(parseManifest(manifestBytes([{ ...files[0]!, sha256: "nope" }])), undefined);
  assert.equal(parseManifest(new TextEncoder().encode("[]")), undefined);
});

Deno.test("only the peer an offer was made to fetches, only what it lists, only while it lasts", () => {
  const offer = { to: "bob", state: "offered" as const, expires: 1000, count: 2 };
  assert.deepEqual(mayFetch(offer, "bob", 0, 500), { ok: true });
  assert.deepEqual(mayFetch(offer, "bob", -1, 500), { ok: true }, "the manifest");
  assert.equal(mayFetch(undefined, "bob", 0, 500).ok, false);
  assert.equal((mayFetch(offer, "mallory", 0, 500) as { code: string }).code, "not-yours");
  assert.equal((mayFetch(offer, "bob", 2, 500) as { code: string }).code, "no-such-file");
  assert.equal((mayFetch(offer, "bob", -2, 500) as { code: string }).code, "no-such-file");
  assert.equal((mayFetch(offer, "bob", 0.5, 500) as { code: string }).code, "no-such-file");
  assert.equal((mayFetch(offer, "bob", 0, 1001) as { code: string }).code, "expired");
  assert.equal((mayFetch({ ...offer, state: "cancelled" }, "bob", 0, 500) as { code: string }).code, "ended");
  assert.equal((mayFetch({ ...offer, state: "refused" }, "bob", 0, 500) as { code: string }).code, "ended");
  // The proof binds the offer, the requester and both sides' randomness.
  const p = fetchProof(new Uint8Array([1]), new Uint8Array([2]), "o", "bob");
  assert.notDeepEqual(p, fetchProof(new Uint8Array([1]), new Uint8Array([2]), "o", "eve"));
  assert.notDeepEqual(p, fetchProof(new Uint8Array([1]), new Uint8Array([3]), "o", "bob"));
});

import {
  dirHeader,
  formatAttachments,
  IPMSG_FILE,
  parseAttachments,
  parseDirHeader,
  parseFileRequest,
} from "../../src/wire/ipmsg_files.ts";
import { RawReader, receiveFolder } from "../../src/node/services/ipmsg_file_stream.ts";

Deno.test("IP Messenger attachments: iptux's list (decimal ids, hex sizes, \\a and \\a: separators, :: in names) is read; junk is left out", () => {
  const iptux = "0:report.bin:10000:6740f1a2:1:\u0007:1:报告2024.txt:5dc0:6740f1a3:1:\u0007:";
  assert.deepEqual(parseAttachments(iptux), [
    { id: 0, name: "report.bin", size: 0x10000, mtime: 0x6740f1a2, kind: IPMSG_FILE.REGULAR },
    { id: 1, name: "报告2024.txt", size: 0x5dc0, mtime: 0x6740f1a3, kind: IPMSG_FILE.REGULAR },
  ]);
  assert.deepEqual(parseAttachments("12:a::b.txt:3:0:1:\u000713:photos:0:0:2:\u0007"), [
    { id: 12, name: "a:b.txt", size: 3, mtime: 0, kind: IPMSG_FILE.REGULAR },
    { id: 13, name: "photos", size: 0, mtime: 0, kind: IPMSG_FILE.DIR },
  ]);
  for (const junk of ["", "x:y:z", "1::3:0:1:\u0007", "1:a:zz:0:1:\u0007", "1:a:3:0:9:\u0007", "-1:a:3:0:1:\u0007"]) {
    assert.deepEqual(parseAttachments(junk), [], JSON.stringify(junk));
  }
  const mine = [{ id: 11, name: "x:y.txt", size: 255, mtime: 16, kind: IPMSG_FILE.REGULAR }];
  assert.deepEqual(parseAttachments(formatAttachments(mine)), mine);
  // Requests name the file id in hex (as iptux and IP Messenger send it), then decimal as a fallback.
  assert.deepEqual(parseFileRequest("1a:b:400"), { packetNo: 26, ids: [11], offset: 1024 });
  assert.deepEqual(parseFileRequest("1a:10:0"), { packetNo: 26, ids: [16, 10], offset: 0 });
  assert.equal(parseFileRequest("zz:1:0"), undefined);
});

/** A connection that gives `bytes` in chunks of `step`. */
function fakeConn(bytes: Uint8Array, step: number): Deno.Conn {
  let at = 0;
  return {
    read(buf: Uint8Array): Promise<number | null> {
      if (at >= bytes.length) return Promise.resolve(null);
      const n = Math.min(step, buf.length, bytes.length - at);
      buf.set(bytes.subarray(at, at + n));
      at += n;
      return Promise.resolve(n);
    },
  } as unknown as Deno.Conn;
}

Deno.test("a folder stream as iptux sends it is written under safe names, and a hostile name never climbs out", async () => {
  const enc = (s: string) => new TextEncoder().encode(s);
  const parts = [
    dirHeader(enc("photos"), 0, IPMSG_FILE.DIR, 1),
    dirHeader(enc("a.txt"), 5, IPMSG_FILE.REGULAR, 1),
    enc("alpha"),
    dirHeader(enc(".."), 0, IPMSG_FILE.DIR, 1), // a folder named ".." stays inside
    dirHeader(enc("../../escape.txt"), 3, IPMSG_FILE.REGULAR, 1),
    enc("bad"),
    dirHeader(enc("."), 0, IPMSG_FILE.RETPARENT, 1),
    dirHeader(enc("中文.txt"), 6, IPMSG_FILE.REGULAR, 1),
    enc("中文"),
    dirHeader(enc("."), 0, IPMSG_FILE.RETPARENT, 1),
  ];
  const stream = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    stream.set(p, at);
    at += p.length;
  }
  assert.deepEqual((parseDirHeader(parts[0]!) as { kind: number }).kind, IPMSG_FILE.DIR);
  for (const step of [1, 7, stream.length]) {
    const dir = Deno.makeTempDirSync();
    const root = `${dir}/photos.part`;
    const got = await receiveFolder(new RawReader(fakeConn(stream, step)), root, "utf-8", () => {});
    assert.deepEqual(got, { files: 3, bytes: 5 + 3 + 6 });
    assert.equal(Deno.readTextFileSync(`${root}/a.txt`), "alpha");
    assert.equal(
      Deno.readTextFileSync(`${root}/_/.._.._escape.txt`),
      "bad",
      'the ".." folder became "_", the path a name',
    );
    assert.equal(Deno.readTextFileSync(`${root}/中文.txt`), "中文");
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["photos.part"], "nothing outside the folder");
    Deno.removeSync(dir, { recursive: true });
  }
  // A stream cut short is an error, not a hang.
  await assert.rejects(
    receiveFolder(new RawReader(fakeConn(stream.subarray(0, 40), 8)), `${Deno.makeTempDirSync()}/x`, "utf-8", () => {}),
    /ended early/,
  );
});

function staticIdentity(): StaticIdentity {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  const raw = new Uint8Array(publicKey.export({ format: "der", type: "spki" }).subarray(12));
  const pkcs8 = new Uint8Array(privateKey.export({ format: "der", type: "pkcs8" }));
  return staticIdentityOf(pkcs8, raw, new NodeSigner(pkcs8, raw).sign);
}

const none = () => undefined;

Deno.test("the stream's handshake: one key each way, and neither side's frames taken for the other's", () => {
  const fetcher = staticIdentity(), server = staticIdentity();
  const { initiator, initiation } = startFileHandshake(fetcher, server.dh.publicKey);
  const answer = answerFileHandshake(server, initiation, (id) => id === fetcher.id ? fetcher.dh.publicKey : undefined);
  assert.equal(answer.kind, "answered");
  if (answer.kind !== "answered") return;
  assert.equal(answer.id, fetcher.id, "the fetcher's node id, from the node key the handshake authenticated");
  const client = finishFileHandshake(fetcher, initiator, answer.response);
  assert.ok(client instanceof StreamCipher);
  const up = client.seal(frameBody(12, new TextEncoder().encode("want")));
  assert.equal(new TextDecoder().decode(answer.cipher.open(up)!.subarray(1)), "want");
  const down = answer.cipher.seal(frameBody(3, new TextEncoder().encode("welcome")));
  assert.equal(new TextDecoder().decode(client.open(down)!.subarray(1)), "welcome");
  // A frame reflected back to its sender does not open (two keys, not one with a direction number).
  const { initiator: i2, initiation: m2 } = startFileHandshake(fetcher, server.dh.publicKey);
  const a2 = answerFileHandshake(server, m2, none);
  assert.ok(a2.kind === "answered");
  const c2 = finishFileHandshake(fetcher, i2, a2.response) as StreamCipher;
  const mine = c2.seal(frameBody(4, new Uint8Array([1])));
  assert.equal(c2.open(mine), undefined);
});

Deno.test("the stream's handshake refuses a byte altered anywhere in either frame", () => {
  const fetcher = staticIdentity(), server = staticIdentity();
  const { initiation } = startFileHandshake(fetcher, server.dh.publicKey);
  for (let i = 0; i < initiation.length; i++) {
    const bad = initiation.slice();
    bad[i]! ^= 0x40;
    assert.equal(answerFileHandshake(server, bad, none).kind, "drop", `initiation byte ${i}`);
  }
  assert.equal(answerFileHandshake(server, initiation.subarray(0, 229), none).kind, "drop", "cut short");
  const { initiator, initiation: fresh } = startFileHandshake(fetcher, server.dh.publicKey);
  const answer = answerFileHandshake(server, fresh, none);
  assert.ok(answer.kind === "answered");
  for (let i = 0; i < answer.response.length; i++) {
    const bad = answer.response.slice();
    bad[i]! ^= 0x40;
    assert.ok(!(finishFileHandshake(fetcher, initiator, bad) instanceof StreamCipher), `response byte ${i}`);
  }
  // The altered ones spoil nothing: the genuine response still reads.
  assert.ok(finishFileHandshake(fetcher, initiator, answer.response) instanceof StreamCipher);
});

Deno.test("the stream's handshake refuses another node's key: a forged binding, a key not the hello's, the wrong server", () => {
  const fetcher = staticIdentity(), server = staticIdentity(), carol = staticIdentity();
  // Carol's X25519 key under the fetcher's node key and binding.
  const forged = { ...carol, id: fetcher.id, edPublic: fetcher.edPublic, binding: fetcher.binding };
  const a = answerFileHandshake(server, startFileHandshake(forged, server.dh.publicKey).initiation, none);
  assert.equal(a.kind === "drop" && a.reason, "bad-signature");
  // The fetcher's own, genuine, but the hello under its id carried another key.
  const b = answerFileHandshake(
    server,
    startFileHandshake(fetcher, server.dh.publicKey).initiation,
    () => carol.dh.publicKey,
  );
  assert.equal(b.kind === "drop" && b.reason, "refused");
  // Made for the server's key, read by carol: she cannot, and so cannot answer as the server.
  const c = answerFileHandshake(carol, startFileHandshake(fetcher, server.dh.publicKey).initiation, none);
  assert.equal(c.kind === "drop" && c.reason, "auth");
  // Carol answering with a response of her own for an initiation she made to herself: not the server's.
  const { initiator } = startFileHandshake(fetcher, server.dh.publicKey);
  const hers = answerFileHandshake(carol, startFileHandshake(fetcher, carol.dh.publicKey).initiation, none);
  assert.ok(hers.kind === "answered");
  assert.ok(!(finishFileHandshake(fetcher, initiator, hers.response) instanceof StreamCipher));
});

Deno.test("a replayed initiation is answered with keys no one else holds: the fetcher reads only its own session", () => {
  const fetcher = staticIdentity(), server = staticIdentity();
  const { initiator, initiation } = startFileHandshake(fetcher, server.dh.publicKey);
  const genuine = answerFileHandshake(server, initiation, none);
  const replayed = answerFileHandshake(server, initiation.slice(), none);
  assert.ok(genuine.kind === "answered" && replayed.kind === "answered");
  assert.notDeepEqual(genuine.response, replayed.response, "a new ephemeral key each time");
  const client = finishFileHandshake(fetcher, initiator, genuine.response) as StreamCipher;
  const want = client.seal(frameBody(12, new Uint8Array([1, 2, 3])));
  // What the fetcher sent in its session does not open in the replayed one, nor the other way.
  assert.equal(replayed.cipher.open(want), undefined);
  assert.equal(client.open(replayed.cipher.seal(frameBody(3, new Uint8Array([1])))), undefined);
  assert.ok(genuine.cipher.open(want));
});

Deno.test("a manifest lists exactly the top-level names its note gave: no other file or folder, none missing, as many of each", () => {
  const m = (...paths: string[]) => paths.map((path) => ({ path }));
  // What a sender makes: files by name, folders as "name/" (an empty one has no entry), a name given twice.
  assert.equal(manifestMismatch(["cat.png"], m("cat.png")), undefined);
  assert.equal(manifestMismatch(["a.png", "pics/", "empty/"], m("a.png", "pics/x.png", "pics/y/z.txt")), undefined);
  assert.equal(manifestMismatch(["x.png", "x.png"], m("x.png", "x.png")), undefined);
  // A note that lies about what its manifest holds.
  const rows: [string[], string[], RegExp][] = [
    [["notes.png"], ["notes.sh"], /lists "notes.sh", which the offer did not name/],
    [["photos.png"], ["photos/run.desktop"], /folder "photos\/"/],
    [["photos/"], ["photos"], /lists "photos"/],
    [["cat.png"], ["cat.png/../evil.sh"], /folder "cat.png\/"/],
    [["cat.png"], ["./cat.png"], /folder "\.\/"/],
    [["cat.png"], ["cat.png", "cat.png"], /2 times, the offer 1/],
    [["cat.png", "cat.png"], ["cat.png", "dog.png"], /dog\.png/],
    [["cat.png", "dog.png"], ["cat.png", "cat.png"], /lists "cat.png" 2 times|lacks "dog.png"/],
    [["cat.png", "x.sh"], ["cat.png"], /lacks "x.sh"/],
    [["CAT.png"], ["cat.png"], /lists "cat.png"/],
  ];
  for (const [names, paths, error] of rows) {
    assert.match(manifestMismatch(names, m(...paths)) ?? "(none)", error, JSON.stringify([names, paths]));
  }
  // A note cut at MAX_NOTE_NAMES names: more files may follow, but each name it gives must be there.
  const twenty = Array.from({ length: MAX_NOTE_NAMES }, (_, i) => `f${i}.png`);
  assert.equal(manifestMismatch(twenty, m(...twenty, "f20.png", "more/x")), undefined);
  assert.match(manifestMismatch(twenty, m(...twenty.slice(1), "f20.png")) ?? "", /lacks "f0.png"/);
});
