/**
 * What a file may be shown as, from its first bytes only; how an offer is
 * told to be pictures for the auto-accept setting (never from a key that is
 * not verified); and the name in Content-Disposition, percent-encoded.
 */
import assert from "node:assert/strict";
import {
  AUTO_ACCEPT_IMAGES_DEFAULT,
  autoAcceptsImages,
  contentDisposition,
  imageName,
  imageSize,
  notAutoAccepted,
  sniffImage,
} from "../../src/protocol/media_type.ts";

const bytes = (...parts: (string | number[])[]) =>
  new Uint8Array(parts.flatMap((p) => typeof p === "string" ? [...p].map((c) => c.charCodeAt(0)) : p));

Deno.test("a file's type comes from its first bytes: PNG, JPEG, GIF, WebP; SVG, HTML, text and truncated heads are not pictures", () => {
  const rows: [Uint8Array, string | undefined][] = [
    [bytes([0x89], "PNG\r\n\x1a\n", [0, 0]), "image/png"],
    [bytes([0xff, 0xd8, 0xff, 0xe0]), "image/jpeg"],
    [bytes("GIF87a"), "image/gif"],
    [bytes("GIF89a<script>"), "image/gif"],
    [bytes("RIFF", [1, 2, 3, 4], "WEBPVP8 "), "image/webp"],
    [bytes("RIFF", [1, 2, 3, 4], "WAVEfmt "), undefined],
    [bytes('<svg xmlns="http://www.w3.org/2000/svg">'), undefined],
    [bytes("<?xml version='1.0'?><svg>"), undefined],
    [bytes("<!doctype html>"), undefined],
    [bytes([0xef, 0xbb, 0xbf], "<html>"), undefined],
    [bytes("%PDF-1.7"), undefined],
    [bytes([0x89], "PNG\r\n"), undefined], // cut short
    [bytes([0xff, 0xd8]), undefined],
    [bytes("GIF88a"), undefined],
    [bytes("RIFF", [1, 2, 3, 4], "WEB"), undefined],
    [new Uint8Array(), undefined],
  ];
  for (const [head, want] of rows) assert.equal(sniffImage(head), want, new TextDecoder().decode(head));
});

Deno.test("auto-accept takes an offer of pictures only, within maxBytes, and only from a verified key", () => {
  const on = { enabled: true, maxBytes: 1000 };
  const offer = (names: string[], bytes = 500, count = names.length) => ({ names, bytes, count });
  const yes = offer(["a.png", "b.JPEG", "c.jpg", "d.gif", "e.webp"]);
  assert.equal(autoAcceptsImages(on, yes, "trusted"), true);
  for (const trust of ["tofu", "conflict", "replaced", undefined] as const) {
    assert.equal(autoAcceptsImages(on, yes, trust), false, String(trust));
  }
  assert.equal(autoAcceptsImages(AUTO_ACCEPT_IMAGES_DEFAULT, yes, "trusted"), false, "off by default");
  assert.equal(autoAcceptsImages(on, offer(["a.png"], 1001), "trusted"), false, "too large");
  assert.equal(autoAcceptsImages(on, offer(["a.png"], 1000), "trusted"), true, "exactly maxBytes");
  assert.equal(autoAcceptsImages(on, offer(["a.png", "b.txt"]), "trusted"), false, "not only pictures");
  assert.equal(autoAcceptsImages(on, offer(["pics.png/"]), "trusted"), false, "a folder");
  assert.equal(autoAcceptsImages(on, offer(["a.png"], 500, 2), "trusted"), false, "a name not listed");
  assert.equal(autoAcceptsImages(on, offer([], 0, 0), "trusted"), false, "nothing");
  assert.equal(autoAcceptsImages(on, offer(["a.svg"]), "trusted"), false);
  assert.equal(autoAcceptsImages(on, offer(["a.png.exe"]), "trusted"), false);
  assert.equal(imageName("x.PnG"), true);
  assert.equal(imageName("png"), false);
});

Deno.test("Content-Disposition carries the name percent-encoded: no CR, LF, quote, semicolon or bidi override raw", () => {
  assert.equal(contentDisposition("inline", "cat.png"), "inline; filename*=UTF-8''cat.png");
  assert.equal(contentDisposition("attachment", "dir/a b.txt"), "attachment; filename*=UTF-8''a%20b.txt");
  assert.equal(contentDisposition("inline", "猫.png"), "inline; filename*=UTF-8''%E7%8C%AB.png");
  const hostile = contentDisposition("attachment", 'x"; filename="evil.html\r\nSet-Cookie: a=b\u202Egnp.exe');
  assert.match(hostile, /^attachment; filename\*=UTF-8''[A-Za-z0-9!#$&+\-.^_`|~%]+$/);
  const name = decodeURIComponent(hostile.slice(hostile.indexOf("''") + 2));
  assert.doesNotMatch(name, /[\r\n"\u202E]/);
  assert.equal(contentDisposition("inline", ""), "inline; filename*=UTF-8''_");
  assert.equal(contentDisposition("inline", "it's (1)*.png"), "inline; filename*=UTF-8''it%27s%20%281%29_.png");
});

Deno.test("a picture's size in pixels comes from its header, nothing decoded: PNG, GIF, WebP (VP8, VP8L, VP8X), JPEG after its EXIF", () => {
  const be32 = (n: number) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
  const le16 = (n: number) => [n & 255, n >>> 8];
  const png = (w: number, h: number) =>
    bytes([0x89], "PNG\r\n\x1a\n", be32(13), "IHDR", be32(w), be32(h), [8, 6, 0, 0, 0]);
  assert.deepEqual(imageSize(png(1, 1), "image/png"), { width: 1, height: 1 });
  // A few bytes that say 50,000 × 50,000: 10 GB to draw. Reported as it says, for the page to leave alone.
  assert.deepEqual(imageSize(png(50_000, 50_000), "image/png"), { width: 50_000, height: 50_000 });
  assert.equal(imageSize(png(0, 5), "image/png"), undefined);
  assert.equal(imageSize(png(1, 1).subarray(0, 20), "image/png"), undefined, "cut short");
  assert.deepEqual(imageSize(bytes("GIF89a", le16(640), le16(480)), "image/gif"), { width: 640, height: 480 });
  const riff = (chunk: string, body: number[]) => bytes("RIFF", [0, 0, 0, 0], "WEBP", chunk, [0, 0, 0, 0], body);
  assert.deepEqual(
    imageSize(riff("VP8 ", [0, 0, 0, 0x9d, 0x01, 0x2a, ...le16(300), ...le16(200)]), "image/webp"),
    { width: 300, height: 200 },
  );
  // VP8L: 0x2f, then 14 bits width-1, 14 bits height-1.
  const bits = (300 - 1) | ((200 - 1) << 14);
  assert.deepEqual(
    imageSize(riff("VP8L", [0x2f, bits & 255, (bits >>> 8) & 255, (bits >>> 16) & 255, bits >>> 24]), "image/webp"),
    { width: 300, height: 200 },
  );
  assert.deepEqual(
    imageSize(riff("VP8X", [0, 0, 0, 0, 299 & 255, 299 >> 8, 0, 199, 0, 0]), "image/webp"),
    { width: 300, height: 200 },
  );
  // 30 kB of EXIF, a quantization table, then a progressive frame (SOF2): height 600, width 800.
  const jpeg = bytes(
    [0xff, 0xd8, 0xff, 0xe1, (30_002 >> 8) & 255, 30_002 & 255],
    new Array(30_000).fill(0),
    [0xff, 0xdb, 0, 4, 0, 0],
    [0xff, 0xc2, 0, 17, 8, 0x02, 0x58, 0x03, 0x20, 3],
  );
  assert.deepEqual(imageSize(jpeg, "image/jpeg"), { width: 800, height: 600 });
  assert.equal(imageSize(jpeg.subarray(0, 20_000), "image/jpeg"), undefined, "its frame beyond the head");
  assert.deepEqual(imageSize(bytes([0xff, 0xd8, 0xff, 0xe1, 0xff, 0xff]), "image/jpeg"), undefined, "cut short");
});

Deno.test("each file of an offer taken under the auto-accept setting is held to it: a picture's name, at the top level, within maxBytes", () => {
  assert.equal(notAutoAccepted("cat.png", 1000, 1000), undefined);
  assert.equal(notAutoAccepted("dog.JPEG", 1, 1000, "dog (1).JPEG"), undefined);
  assert.match(notAutoAccepted("notes.sh", 10, 1000) ?? "", /"notes.sh" is not named as a picture/);
  assert.match(notAutoAccepted("pics/a.png", 10, 1000) ?? "", /in a folder/);
  assert.match(notAutoAccepted("cat.png", 1001, 1000) ?? "", /larger \(1001 bytes\) than .* \(1000\)/);
  // The name it would be written under is checked too, not only the one the sender gave.
  assert.match(notAutoAccepted("cat.png", 10, 1000, "cat.png.sh") ?? "", /not named as a picture/);
  assert.match(notAutoAccepted("cat.png", 10, 1000, "x/cat.png") ?? "", /in a folder/);
});
