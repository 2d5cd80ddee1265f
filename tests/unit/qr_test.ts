/** The QR code `lanchat web --lan` prints decodes to its link, plain and in colour, short and long. */
import assert from "node:assert/strict";
import { qrModules, qrText } from "../../src/cli/qr.ts";
import { decodeQrs } from "../support/qr_decode.ts";

Deno.test("the printed QR code decodes to the link, plain and painted for a terminal", () => {
  const link = "http://198.18.0.11:47476/session?code=" + "Zq9-_x".repeat(7) + "A";
  assert.deepEqual(decodeQrs(qrText(link)), [link]);
  const painted = qrText(link, true);
  assert.ok(painted.split("\n").every((l) => l.startsWith("\x1b[97;40m") && l.endsWith("\x1b[0m")));
  assert.deepEqual(decodeQrs(painted), [link]);
  // An IPv4 link with a code is a version 4 symbol (33 modules): 41 columns and 21 lines with the quiet zone.
  assert.equal(qrModules(link).length, 33);
  assert.equal(qrText(link).split("\n").length, 21);
  const long = `http://[fd00::1234:5678:9abc:def0]:47476/session?code=${"x".repeat(200)}`;
  assert.deepEqual(decodeQrs(qrText(long)), [long]);
});
