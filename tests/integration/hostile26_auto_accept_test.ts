/**
 * Hostile test of issue 26's auto-accept pictures (found by an outside
 * tester). The decision is taken on the offer note alone (its top-level
 * `names`, `count`, `bytes`), but what is written is what the manifest
 * lists, and the manifest's paths are never compared with the note's names
 * (only its SHA-256, count and total size are checked). A verified peer
 * whose daemon says `names: ["notes.png"]` while the manifest says
 * `notes.sh` (or `photos/run.desktop`) gets any file written into the
 * downloads folder without anyone accepting it: the setting's "only
 * pictures, at the top level" is only what the sender claims.
 *
 * The lying sender is this checkout's daemon with one line changed (its
 * note names each `.sh` as `.png`), copied to a temporary folder.
 */
import assert from "node:assert/strict";
import { freeUdpPort, killAll, startLoopbackDaemon, tempDataDir, until } from "../support/daemon_process.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/** A copy of this checkout whose offers name every `.sh` file `.png` in the note (the manifest stays true). */
async function lyingCheckout(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "lanchat-liar-" });
  const cp = await new Deno.Command("cp", {
    args: ["-r", `${ROOT}src`, `${ROOT}web`, `${ROOT}main.ts`, `${ROOT}deno.json`, `${ROOT}deno.lock`, dir],
  }).output();
  assert.ok(cp.success);
  const file = `${dir}/src/node/services/files_offer.ts`;
  const source = await Deno.readTextFile(file);
  const line = "names: names.slice(0, MAX_NOTE_NAMES),";
  assert.ok(source.includes(line), "the line to change is still there");
  await Deno.writeTextFile(
    file,
    source.replace(line, 'names: names.map((n) => n.replace(/\\.sh$/, ".png")).slice(0, MAX_NOTE_NAMES),'),
  );
  return dir;
}

Deno.test("auto-accept pictures: an offer whose note names a picture but whose files are not pictures is not taken without asking", async () => {
  const made: string[] = [];
  try {
    const liar = await lyingCheckout();
    const downloads = Deno.makeTempDirSync({ prefix: "lanchat-dl-" });
    const src = Deno.makeTempDirSync({ prefix: "lanchat-src-" });
    made.push(liar, downloads, src);
    const port = freeUdpPort();
    const a = await startLoopbackDaemon(port, "mallory", { repo: liar }).started(60_000);
    const b = await startLoopbackDaemon(port, "bob", { dataDir: tempDataDir(), extra: ["--downloads", downloads] })
      .started();
    await a.joined(b.id, 8000);
    await b.joined(a.id, 8000);
    const put = await fetch(`${b.httpUrl}/settings`, {
      method: "PUT",
      body: JSON.stringify({ autoAcceptImages: { enabled: true, maxBytes: 10_000 } }),
    });
    assert.equal(put.status, 200);
    // bob compared safety numbers with mallory's host once (it is someone he knows); her daemon now lies.
    assert.equal(
      (await fetch(`${b.httpUrl}/trust`, { method: "POST", body: JSON.stringify({ peer: a.id }) })).status,
      200,
    );

    await Deno.writeTextFile(`${src}/notes.sh`, "#!/bin/sh\necho pwned\n");
    const r = await fetch(`${a.httpUrl}/files`, {
      method: "POST",
      body: JSON.stringify({ to: b.id, paths: [`${src}/notes.sh`] }),
    });
    const out = await r.json();
    assert.equal(r.status, 202, JSON.stringify(out));
    assert.deepEqual(out.names, ["notes.png"], "the lying sender's note names a picture");

    let t: { state?: string; names?: string[] } = {};
    await until("the offer to reach bob", async () => {
      const res = await fetch(`${b.httpUrl}/transfers/${out.id}`);
      t = await res.json();
      return res.status === 200 && ["offered", "active", "done", "failed"].includes(t.state ?? "");
    }, 15_000);
    // Give an auto-accept the time it takes for 22 bytes on loopback.
    await new Promise((r) => setTimeout(r, 3000));
    t = await (await fetch(`${b.httpUrl}/transfers/${out.id}`)).json();
    const written = [...Deno.readDirSync(downloads)].map((e) => e.name);
    assert.deepEqual(written, [], `written into downloads without anyone accepting: ${JSON.stringify(written)}`);
    assert.notEqual(t.state, "done", `taken without anyone accepting it: ${JSON.stringify(t)}`);
  } finally {
    await killAll();
    for (const d of made) await Deno.remove(d, { recursive: true }).catch(() => {});
  }
});
