import assert from "node:assert/strict";
import { loadWebAssets } from "../../src/node/web_assets.ts";

Deno.test("the page's files: every file of web/ and web/icons/ of a known kind under its path, index.html as /; nothing else", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const write = (name: string) => Deno.writeTextFile(`${dir}/${name}`, name);
    for (
      const name of ["index.html", "app.js", "view.js", "app.css", "icon.svg", ".secret.js", "notes.txt", "run.sh"]
    ) {
      await write(name);
    }
    await Deno.mkdir(`${dir}/icons`);
    await Deno.writeTextFile(`${dir}/icons/icon.png`, "x");
    await Deno.writeTextFile(`${dir}/icons/index.html`, "x");
    await Deno.mkdir(`${dir}/sub`);
    await Deno.writeTextFile(`${dir}/sub/deep.js`, "x");
    await Deno.mkdir(`${dir}/.git`);
    await Deno.writeTextFile(`${dir}/.git/config.js`, "x");
    const assets = await loadWebAssets(new URL(`file://${dir}/`));
    assert.deepEqual([...assets.keys()].sort(), [
      "/",
      "/app.css",
      "/app.js",
      "/icon.svg",
      "/icons/icon.png",
      "/icons/index.html",
      "/view.js",
    ]);
    assert.equal(assets.get("/view.js")!.type, "text/javascript; charset=utf-8");
    assert.equal(new TextDecoder().decode(assets.get("/")!.body), "index.html");
    // Without index.html there is no page (the API only), as when web/ cannot be read at all.
    await Deno.remove(`${dir}/index.html`);
    assert.equal((await loadWebAssets(new URL(`file://${dir}/`))).size, 0);
    assert.equal((await loadWebAssets(new URL(`file://${dir}/missing/`))).size, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the repository's web/ is served whole: each module app.js imports is there", async () => {
  const assets = await loadWebAssets();
  const app = new TextDecoder().decode(assets.get("/app.js")!.body);
  const imported = [...app.matchAll(/from "\.\/([\w-]+\.js)"|import "\.\/([\w-]+\.js)"/g)].map((m) => m[1] ?? m[2]);
  assert.ok(imported.length >= 6, imported.join());
  for (const name of imported) assert.ok(assets.has(`/${name}`), `${name} is served`);
  // And every module those import (text.js imports hidden.js, the rule the CLI shares).
  for (const [path, asset] of assets) {
    if (!path.endsWith(".js")) continue;
    const text = new TextDecoder().decode(asset.body);
    for (const m of text.matchAll(/from "\.\/([\w-]+\.js)"/g)) {
      assert.ok(assets.has(`/${m[1]}`), `${path} imports ${m[1]}`);
    }
  }
  assert.ok(assets.has("/hidden.js"));
});
