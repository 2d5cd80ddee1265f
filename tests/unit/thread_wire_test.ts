/**
 * Replies, edits and deletions on the wire: a message fragment's optional
 * reference to another message (`rt`, `ed`, `dl`) and its validation (the
 * room it takes in a datagram: e2e_link_test.ts, beside the largest fragment's).
 */
import assert from "node:assert/strict";
import { createGroup, parseGroupLine, withGroupLine } from "../../src/protocol/groups.ts";
import { decodePacket, encodePacket, type Msg } from "../../src/wire/mod.ts";

const ID = "a".repeat(32);
const base: Msg = {
  kind: "msg",
  id: ID,
  incarnation: 1,
  to: "b".repeat(32),
  messageId: "c".repeat(32),
  seq: 2,
  base: 1,
  sentAt: 1_700_000_000_000,
  length: 5,
  count: 1,
  index: 0,
  retry: 0,
  end: true,
  payload: new TextEncoder().encode("hello"),
};

Deno.test("thread wire: a reply, an edit and a delete round-trip; a fragment without one has no ref", () => {
  for (const kind of ["reply", "edit", "delete"] as const) {
    const m: Msg = { ...base, ref: { kind, id: "d".repeat(32) } };
    assert.deepEqual(decodePacket(encodePacket(m)), { ok: true, value: m });
  }
  const plain = decodePacket(encodePacket(base));
  assert.ok(plain.ok && plain.value.kind === "msg" && plain.value.ref === undefined);
});

Deno.test("thread wire: two refs on one fragment, or an id that is not 32 hex, is a bad field", () => {
  const json = (extra: Record<string, unknown>) => {
    const bytes = encodePacket(base);
    const len = (bytes[6]! << 8) | bytes[7]!;
    const body = { ...JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + len))), ...extra };
    const j = new TextEncoder().encode(JSON.stringify(body));
    return new Uint8Array([...bytes.subarray(0, 6), j.length >> 8, j.length & 255, ...j, ...base.payload]);
  };
  const d = "d".repeat(32);
  for (
    const extra of [{ rt: d, ed: d }, { ed: d, dl: d }, { rt: "D".repeat(32) }, { ed: "d".repeat(31) }, { dl: 5 }, {
      rt: null,
    }]
  ) {
    const r = decodePacket(json(extra));
    assert.ok(!r.ok && r.reason === "bad-field", JSON.stringify(extra));
  }
  // A previous version's fragment decodes as before; unknown keys are still ignored.
  const r = decodePacket(json({ zz: 1 }));
  assert.ok(r.ok && r.value.kind === "msg" && r.value.ref === undefined);
});

Deno.test("thread wire: a group line names the message as written to the group; a malformed name is left out", () => {
  const group = createGroup("1".repeat(32), "team", ID, ["b".repeat(32)]);
  const text = withGroupLine("hello", { group, message: "d".repeat(32) });
  assert.equal(parseGroupLine(text)?.message, "d".repeat(32));
  assert.equal(parseGroupLine(withGroupLine("hello", { group }))?.message, undefined);
  for (const bad of ["D".repeat(32), "d".repeat(31), 5, null]) {
    const forged = text.replace(`"i":"${"d".repeat(32)}"`, `"i":${JSON.stringify(bad)}`);
    const line = parseGroupLine(forged);
    assert.ok(line, "still a group message");
    assert.equal(line.message, undefined, String(bad));
  }
});
