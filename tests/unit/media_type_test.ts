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
