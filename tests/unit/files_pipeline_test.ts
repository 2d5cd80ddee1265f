import assert from "node:assert/strict";
import { PIPELINE_MAX, pipelineOf } from "../../src/node/services/files_pipeline.ts";

Deno.test("requests in flight: as many as the sender's welcome says, at most PIPELINE_MAX; a previous version's (none) or a junk value, one", () => {
  assert.equal(pipelineOf({ ok: true }), 1, "a previous version says nothing");
  assert.equal(pipelineOf({ ok: true, pipeline: 64 }), 64);
  assert.equal(pipelineOf({ ok: true, pipeline: 8 }), 8);
  assert.equal(pipelineOf({ ok: true, pipeline: 1_000_000 }), PIPELINE_MAX, "a sender cannot make it open more");
  for (const junk of ["64", -3, 0, 1.5, NaN, Infinity, null, [64], { n: 64 }]) {
    assert.equal(pipelineOf({ ok: true, pipeline: junk }), 1, JSON.stringify(junk));
  }
});
