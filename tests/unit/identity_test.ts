import assert from "node:assert/strict";
import { loadOrCreateIdentity, unsafeKeyFile } from "../../src/security/identity.ts";

Deno.test("a node key others may read, or another user owns, is refused with what to do; a private one loads", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    const made = await loadOrCreateIdentity(dir);
    const path = `${dir}/node_key.json`;
    assert.equal(Deno.statSync(path).mode! & 0o777, 0o600, "made private");
    assert.equal((await loadOrCreateIdentity(dir)).id, made.id, "a private key loads");
    for (const mode of [0o644, 0o640, 0o604, 0o660]) {
      Deno.chmodSync(path, mode);
      await assert.rejects(
        () => loadOrCreateIdentity(dir),
        new RegExp(`Node key .* has mode ${mode.toString(8)}: other users of this host may have copied`),
      );
    }
    Deno.chmodSync(path, 0o600);
    assert.match(
      unsafeKeyFile(Deno.statSync(path), path, Deno.statSync(path).uid! + 1)!,
      /belongs to user \d+, not to this daemon's user \d+: that user may have put in a key of their own/,
    );
    assert.equal(unsafeKeyFile(Deno.statSync(path), path), undefined);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
