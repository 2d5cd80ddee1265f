/**
 * Peer exchange's requests: a request that gets no answer (lost under load,
 * or sent before the peer had us in its roster or a session) is asked again,
 * with backoff and a bound, until one comes.
 */
import assert from "node:assert/strict";
import {
  ANSWER_GAP_MS,
  ASK_AGAIN_MS,
  ASK_GAP_MS,
  AskSchedule,
  RETRIES,
  RETRY_MS,
} from "../../src/protocol/ask_schedule.ts";

/** Runs the schedule from 0 to `until`, answering when `answers(t)` says; the times `id` was asked. */
function run(s: AskSchedule, until: number, answers: (t: number) => boolean): number[] {
  const asked: number[] = [];
  for (let now = 0; now <= until;) {
    for (const id of s.due(now)) {
      asked.push(now);
      if (answers(now)) s.answered(id);
    }
    const next = s.next();
    if (next === undefined) break;
    assert.ok(next > now, "nothing left due at now");
    now = next;
  }
  return asked;
}

Deno.test("an answered peer is asked at its join, once more soon after, then rarely", () => {
  const s = new AskSchedule();
  s.joined("p", 0);
  assert.deepEqual(run(s, 2 * ASK_GAP_MS, () => true), [0, ASK_AGAIN_MS, ASK_AGAIN_MS + ASK_GAP_MS]);
  assert.equal(s.retried, 0);
});

Deno.test("a request that got no answer is asked again with a growing gap until one comes", () => {
  const s = new AskSchedule();
  s.joined("p", 0);
  // The first three requests (the join's, its re-ask, the first retry) are lost; the fourth is answered.
  let n = 0;
  const asked = run(s, ASK_GAP_MS - 1, () => ++n >= 4);
  assert.deepEqual(asked, [0, ASK_AGAIN_MS, ASK_AGAIN_MS + RETRY_MS, ASK_AGAIN_MS + RETRY_MS + 2 * RETRY_MS]);
  assert.equal(s.retried, 2);
  // Every gap between two requests is longer than the answerer's least gap: none is ignored by it.
  for (let i = 1; i < asked.length; i++) assert.ok(asked[i]! - asked[i - 1]! > ANSWER_GAP_MS);
});

Deno.test("a peer that never answers is asked again a bounded number of times until the next regular request", () => {
  const s = new AskSchedule();
  s.joined("p", 0);
  const asked = run(s, ASK_AGAIN_MS + ASK_GAP_MS - 1, () => false);
  assert.equal(asked.length, 2 + RETRIES, `asked at ${asked.join(", ")}`);
  assert.equal(s.retried, RETRIES);
});

Deno.test("a peer that left is not asked any more", () => {
  const s = new AskSchedule();
  s.joined("p", 0);
  assert.deepEqual(s.due(0), ["p"]);
  s.left("p");
  assert.equal(s.next(), undefined);
});
