import assert from "node:assert/strict";
import { OneFileError } from "../../src/node/services/files_model.ts";
import { DiskFull, diskFull, fruitless, PIPELINE_MAX, pipelineOf } from "../../src/node/services/files_pipeline.ts";

Deno.test("requests in flight: as many as the sender's welcome says, at most PIPELINE_MAX; a previous version's (none) or a junk value, one", () => {
  assert.equal(pipelineOf({ ok: true }), 1, "a previous version says nothing");
  assert.equal(pipelineOf({ ok: true, pipeline: 64 }), 64);
  assert.equal(pipelineOf({ ok: true, pipeline: 8 }), 8);
  assert.equal(pipelineOf({ ok: true, pipeline: 1_000_000 }), PIPELINE_MAX, "a sender cannot make it open more");
  for (const junk of ["64", -3, 0, 1.5, NaN, Infinity, null, [64], { n: 64 }]) {
    assert.equal(pipelineOf({ ok: true, pipeline: junk }), 1, JSON.stringify(junk));
  }
});

Deno.test("a full disk (ENOSPC, EDQUOT) is told from a file that cannot be written, and says the disk is full", () => {
  for (const m of ["No space left on device (os error 28)", "Disk quota exceeded (os error 122)"]) {
    const full = diskFull(new OneFileError(`cannot be written: ${m}`), "/dl");
    assert.ok(full instanceof DiskFull, m);
    assert.match(full.message, /the disk of \/dl is full/);
    assert.ok(full.message.includes(m), "the system's words are kept");
  }
  for (const m of ["File too large (os error 27)", "Permission denied (os error 13)", "os error 280"]) {
    assert.equal(diskFull(new OneFileError(`cannot be written: ${m}`), "/dl"), undefined, m);
  }
});

Deno.test("fruitless tries: a sender that answered is not said to have withdrawn the offer; the last reason is kept", () => {
  const silent = fruitless("alice", 6, false, new Error("connection reset"));
  assert.match(silent, /^alice sent nothing in 6 tries in a row, so it no longer offers this .*connection reset$/);
  const liar = fruitless("alice", 6, true, new Error("more data than the size of pack/f05.bin"));
  assert.match(liar, /^alice answered, but no file came whole in 6 tries in a row; .*pack\/f05\.bin$/);
});
