/**
 * The token file is the proof of being the daemon's owner: made 0600 with
 * no moment when others could read it, and refused (with what to do) when
 * others could have read it or another user owns it.
 */
import assert from "node:assert/strict";
import { loadOrCreateToken, unsafeTokenFile } from "../../src/security/http_token.ts";

function withDir(fn: (dir: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = Deno.makeTempDirSync();
    try {
      await fn(dir);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  };
}

Deno.test(
  "a world-readable token file is refused, with what to do, and left as it was",
  withDir(async (dir) => {
    const path = `${dir}/http_token`;
    Deno.writeTextFileSync(path, "a-token-that-is-long-enough\n");
    for (const mode of [0o644, 0o640, 0o604, 0o620, 0o660]) {
      Deno.chmodSync(path, mode);
      await assert.rejects(
        loadOrCreateToken(path),
        new RegExp(
          `HTTP token file .*http_token has mode ${
            mode.toString(8)
          }: other users of this host may have read it; remove it`,
        ),
      );
      assert.equal(Deno.statSync(path).mode! & 0o777, mode, "not changed behind the admin's back");
    }
    Deno.chmodSync(path, 0o600);
    assert.equal(await loadOrCreateToken(path), "a-token-that-is-long-enough");
    Deno.chmodSync(path, 0o400);
    assert.equal(await loadOrCreateToken(path), "a-token-that-is-long-enough", "read-only for the owner is fine");
  }),
);

Deno.test(
  "a token file another user owns is refused (checked as root with a file given to nobody)",
  withDir(async (dir) => {
    const path = `${dir}/http_token`;
    Deno.writeTextFileSync(path, "a-token-that-is-long-enough\n", { mode: 0o600 });
    assert.match(
      unsafeTokenFile(Deno.statSync(path), path, 1234)!,
      /belongs to user \d+, not to this daemon's user 1234/,
    );
    if (Deno.uid() === 0) {
      Deno.chownSync(path, 65534, 65534);
      await assert.rejects(loadOrCreateToken(path), /belongs to user 65534, not to this daemon's user 0/);
    }
  }),
);

Deno.test(
  "a new token file is 0600 whatever the umask, complete, and two daemons starting at once agree on one token",
  withDir(async (dir) => {
    const path = `${dir}/http_token`;
    const old = Deno.umask(0o000);
    try {
      const tokens = await Promise.all(Array.from({ length: 8 }, () => loadOrCreateToken(path)));
      assert.equal(new Set(tokens).size, 1, "one token");
      assert.equal(Deno.statSync(path).mode! & 0o777, 0o600);
      assert.equal(Deno.readTextFileSync(path), `${tokens[0]}\n`);
      assert.match(tokens[0]!, /^[\w-]{43}$/);
      assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["http_token"], "no temporary file left");
    } finally {
      Deno.umask(old);
    }
  }),
);

Deno.test(
  "a token file too short, or a directory where it should be, is a clear error",
  withDir(async (dir) => {
    Deno.writeTextFileSync(`${dir}/short`, "abc\n", { mode: 0o600 });
    await assert.rejects(loadOrCreateToken(`${dir}/short`), /holds fewer than 16 characters/);
    Deno.mkdirSync(`${dir}/adir`, { mode: 0o700 });
    await assert.rejects(loadOrCreateToken(`${dir}/adir`), /Cannot read HTTP token file/);
    await assert.rejects(loadOrCreateToken(`${dir}/no/such/dir/http_token`), /Cannot write HTTP token file/);
  }),
);
