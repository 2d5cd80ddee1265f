import assert from "node:assert/strict";
import { DataDirInUseError, Store } from "../../src/store.ts";

Deno.test("a damaged database is a clear error at start that says what to do", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "lanchat-store-" });
  Deno.writeFileSync(`${dir}/lanchat.db`, crypto.getRandomValues(new Uint8Array(4096)));
  await assert.rejects(() => Store.open(dir), /Cannot open database .*lanchat\.db: .*move it away/);
});

Deno.test("a database held by another daemon is refused with the data directory named", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "lanchat-store-" });
  const first = await Store.open(dir);
  try {
    await assert.rejects(() => Store.open(dir), (e) => e instanceof DataDirInUseError && e.message.includes(dir));
  } finally {
    first.close();
  }
});
