/** One-shot (legacy unicast) mDNS queries: answered only to on-link sources, rate-limited (hostile 3 finding 4). */
import assert from "node:assert/strict";
import { LEGACY_GAP_MS, LEGACY_OVERALL, LegacyAnswers } from "../../src/protocol/legacy_answers.ts";

Deno.test("a one-shot query from off the link is not answered", () => {
  const l = new LegacyAnswers();
  assert.equal(l.allow("203.0.113.5", false, 0), "off-link");
  assert.equal(l.allow("198.18.0.12", true, 0), true);
});

Deno.test("one destination gets at most one one-shot answer a second, however many queries", () => {
  const l = new LegacyAnswers();
  let answered = 0;
  for (let now = 0; now < 10_000; now += 10) if (l.allow("198.18.0.12", true, now) === true) answered++;
  assert.equal(answered, 10_000 / LEGACY_GAP_MS);
});

Deno.test("spoofed on-link sources get at most the overall number of answers a second", () => {
  const l = new LegacyAnswers();
  let answered = 0;
  for (let i = 1; i < 255; i++) if (l.allow(`198.18.0.${i}`, true, 500) === true) answered++;
  assert.equal(answered, LEGACY_OVERALL);
  assert.equal(l.allow("198.18.0.1", true, 1600), true, "a second later a destination is answered again");
});
