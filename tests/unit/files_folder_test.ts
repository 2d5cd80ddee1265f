/**
 * The folder an offer is saved in (src/node/services/files_folder.ts): one
 * that cannot be made or written is said in words (never the runtime's
 * `os error` or `--allow-all`), and its failure at fetch time is permanent
 * (a FileError: the transfer fails) rather than retried for ever.
 */
import assert from "node:assert/strict";
import { folderProblem, makeFolder } from "../../src/node/services/files_folder.ts";
import { FileError } from "../../src/node/services/files_model.ts";

Deno.test("a folder that cannot be made or written is said in words, and fails a fetch for good", async () => {
  const dir = await Deno.makeTempDir({ prefix: "lanchat-folder-" });
  try {
    await Deno.writeTextFile(`${dir}/report.pdf`, "x");
    assert.equal(folderProblem(`${dir}/new/deeper`), undefined);
    assert.ok(Deno.statSync(`${dir}/new/deeper`).isDirectory, "made");
    assert.deepEqual([...Deno.readDirSync(`${dir}/new/deeper`)], [], "the write check leaves nothing");
    const cases = [`${dir}/report.pdf`, `${dir}/report.pdf/inside`, "/proc/nonexist", "/proc/self/nonexist"];
    for (const bad of cases) {
      const said = folderProblem(bad);
      assert.ok(said, bad);
      assert.doesNotMatch(said!, /os error|--allow-all|mkdir/, said);
      assert.ok(said!.includes(bad), said);
      await assert.rejects(() => makeFolder(bad), (e) => {
        assert.ok(e instanceof FileError, `${bad}: ${e}`);
        assert.doesNotMatch((e as Error).message, /os error|--allow-all/);
        return true;
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
