/**
 * What the file-transfer tests share: files to offer (a sparse one with
 * random blocks, so a wrong offset or a lost block shows in its hash), their
 * SHA-256, and the folders a test made, removed with its daemons when it
 * ends (a 4 GiB download must not stay behind).
 */
import { createHash } from "node:crypto";
import assert from "node:assert/strict";
import type { TransferJson } from "../../src/api/types.ts";
import { type DaemonProcess, freeUdpPort, killAll, startLoopbackDaemon, until } from "./daemon_process.ts";
import { mountTmpfs, removeTmpfs, tmpfsUnavailable } from "./tmpfs.ts";

export function sha(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

export async function sha256File(path: string): Promise<string> {
  using f = await Deno.open(path);
  const h = createHash("sha256");
  const buf = new Uint8Array(1 << 20);
  for (let n = await f.read(buf); n !== null; n = await f.read(buf)) h.update(buf.subarray(0, n));
  return h.digest("hex");
}

/** A sparse file of `size` bytes with a few random blocks (so a wrong offset shows in its hash). */
export async function sparseFile(path: string, size: number): Promise<void> {
  using f = await Deno.open(path, { write: true, create: true, truncate: true });
  await f.truncate(size);
  for (let at = 0; at + 4096 <= size; at += Math.floor(size / 7)) {
    await f.seek(at, Deno.SeekMode.Start);
    await f.write(crypto.getRandomValues(new Uint8Array(4096)));
  }
}

/** Folders made by the running test (downloads, data, sources), removed by {@link cleanUp}. */
export const made: string[] = [];

/** Folders with a tmpfs mounted over them by {@link fastDir}, unmounted and removed by {@link cleanUp}. */
const mounted: string[] = [];

/**
 * A new folder for big sparse files: a tmpfs of its own where one can be
 * mounted (root), since this VM's ext4 reads a hole at about 14 s a GiB and
 * every offer hashes the whole file (a sparse file takes no memory there);
 * else a plain temporary folder. Removed by {@link cleanUp}.
 */
export async function fastDir(prefix: string): Promise<string> {
  const dir = Deno.makeTempDirSync({ prefix });
  if (tmpfsUnavailable === undefined) {
    try {
      await mountTmpfs(dir, "8g");
      mounted.push(dir);
      return dir;
    } catch { /* a plain folder, then */ }
  }
  made.push(dir);
  return dir;
}

/** Ends every daemon started and removes the folders in {@link made} and those of {@link fastDir}. */
export async function cleanUp(): Promise<void> {
  await killAll();
  for (const dir of made.splice(0)) await Deno.remove(dir, { recursive: true }).catch(() => {});
  for (const dir of mounted.splice(0)) await removeTmpfs(dir);
}

/** A daemon's JSON answer to `GET path`, or to `POST path` with `body`. */
export async function api<T>(d: DaemonProcess, path: string, body?: unknown): Promise<T> {
  const res = await fetch(
    `${d.httpUrl}${path}`,
    body === undefined ? {} : { method: "POST", body: JSON.stringify(body) },
  );
  return await res.json() as T;
}

/** Waits for transfer `id` at `d` to be `state` (failing at once if it failed instead); its JSON then. */
export async function waitState(d: DaemonProcess, id: string, state: string, ms: number): Promise<TransferJson> {
  let t: TransferJson | undefined;
  await until(`transfer ${id} to be ${state}`, async () => {
    t = await api<TransferJson>(d, `/transfers/${id}`).catch(() => undefined);
    return t?.state === state || (t?.state === "failed" && state !== "failed");
  }, ms).catch((e) => {
    throw new Error(`${e.message}; it is ${JSON.stringify(t)}; its log:\n${d.rawStderr.slice(-12).join("\n")}`);
  });
  assert.equal(t!.state, state, JSON.stringify(t));
  return t!;
}

/** Every file under `dir` with its SHA-256, by relative path. */
export async function hashes(dir: string, rel = ""): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const e of Deno.readDirSync(rel ? `${dir}/${rel}` : dir)) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory) Object.assign(out, await hashes(dir, p));
    else out[p] = await sha256File(`${dir}/${p}`);
  }
  return out;
}

/**
 * A folder `many` of `count` small files (`file i` repeated, 3.6–4 KiB) in a fast source folder, offered by alice to
 * bob (who asks before accepting, saving in a fast downloads folder), the offer seen at bob. {@link cleanUp} ends it.
 */
export async function offeredFolder(count: number): Promise<{
  src: string;
  downloads: string;
  a: DaemonProcess;
  b: DaemonProcess;
  id: string;
}> {
  const port = freeUdpPort();
  const src = await fastDir("lanchat-src-");
  const downloads = await fastDir("lanchat-dl-");
  await Deno.mkdir(`${src}/many`);
  for (let i = 0; i < count; i++) await Deno.writeTextFile(`${src}/many/f${i}.bin`, `file ${i}\n`.repeat(400));
  const a = await startLoopbackDaemon(port, "alice").started();
  const b = await startLoopbackDaemon(port, "bob", { extra: ["--downloads", downloads, "--accept-files", "ask"] })
    .started();
  await a.joined(b.id, 5000);
  const id = (await api<TransferJson>(a, "/files", { to: "bob", paths: [`${src}/many`] })).id;
  await waitState(b, id, "offered", 10_000);
  return { src, downloads, a, b, id };
}
