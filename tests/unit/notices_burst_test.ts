import assert from "node:assert/strict";
import { BURST_LINES_PER_MINUTE, Notices } from "../../src/node/notices.ts";

Deno.test("a burst of one kind of line is cut at its limit a minute and the next line says how many were held", () => {
  let now = 0;
  const notices = new Notices(() => now);
  const logged: number[] = [];
  for (let i = 0; i < 2000; i++) {
    now = i * 10; // 2,000 invented peers in 20 s
    const b = notices.burst("roster");
    if (b.ok) logged.push(b.held);
  }
  assert.equal(logged.length, BURST_LINES_PER_MINUTE);
  now = 60_000;
  const next = notices.burst("roster");
  assert.deepEqual(next, { ok: true, held: 2000 - BURST_LINES_PER_MINUTE });
  // Another kind has its own budget.
  assert.equal(notices.burst("unencrypted").ok, true);
});
