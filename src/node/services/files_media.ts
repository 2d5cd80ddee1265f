/**
 * Pictures: a file of a transfer served to the page
 * (`GET /transfers/ID/files/N`), and the auto-accept-images setting.
 *
 * A file is served only if it is still the one that was received or
 * offered: an incoming file from where it was saved, its real path inside
 * the transfer's folder (no symbolic link on the way, none put in its place
 * after the check), an outgoing one from its source; its size, and for
 * files up to 64 MiB its SHA-256 (remembered per inode, size, mtime and
 * ctime, so a thumbnail shown again is not hashed again), must be the
 * offer's; beyond that its mtime. Anything else is a 4xx saying why. The
 * type it is served as comes from its first bytes (protocol/media_type.ts).
 *
 * @module
 */
import type { ServedFile } from "../../api/api.ts";
import { finished, formatBytes } from "../../protocol/files.ts";
import {
  AUTO_ACCEPT_IMAGES_DEFAULT,
  type AutoAcceptImages,
  autoAcceptsImages,
  contentDisposition,
  sniffImage,
} from "../../protocol/media_type.ts";
import { FileError, hashOpen, type Transfer } from "./files_model.ts";
import { IPMSG_FILE } from "../../wire/ipmsg_files.ts";
import type { FilesState } from "./files_state.ts";
import { HASH_CHECK_MAX_BYTES, readHead } from "./files_images.ts";

/** Files whose SHA-256 was checked, remembered by what a change would alter. */
const VERIFIED_KEEP = 1024;
/** The key in the settings room. */
const SETTING = "auto-accept-images";

/** The pictures part of the file service. */
export class Media {
  #s: FilesState;
  /** `dev:ino:size:mtime:ctime` → the SHA-256 that file was found to have. */
  #verified = new Map<string, string>();
  #setting: AutoAcceptImages = AUTO_ACCEPT_IMAGES_DEFAULT;

  constructor(state: FilesState) {
    this.#s = state;
  }

  /** Reads the setting from the store; `flag` (the daemon's --auto-accept-images), when given, replaces it. */
  load(flag?: AutoAcceptImages): void {
    try {
      const v = JSON.parse(this.#s.d.store.setting(SETTING) ?? "null");
      if (typeof v?.enabled === "boolean" && Number.isSafeInteger(v?.maxBytes) && v.maxBytes > 0) this.#setting = v;
    } catch { /* the default */ }
    if (flag) this.setAutoAcceptImages(flag);
  }

  get autoAcceptImages(): AutoAcceptImages {
    return { ...this.#setting };
  }

  /** Changes the setting and keeps it (a StoreError when it cannot be stored: then nothing changed). */
  setAutoAcceptImages(v: AutoAcceptImages): AutoAcceptImages {
    const next = { enabled: v.enabled, maxBytes: v.maxBytes };
    this.#s.d.store.saveSetting(SETTING, JSON.stringify(next));
    this.#setting = next;
    this.#s.log.info("Pictures from verified peers up to {size}: {state}", {
      size: formatBytes(next.maxBytes),
      state: next.enabled ? "accepted without asking" : "wait to be accepted",
    });
    return this.autoAcceptImages;
  }

  /**
   * Whether an offer that came is accepted by the setting: only one that came end-to-end encrypted (a clear message
   * could be anyone's under a verified peer's id), and not when it would not fit (then it waits for a person).
   * Accepted: the setting's `maxBytes`, that each file which comes is held to (files_fetch.ts checks them again).
   */
  autoAccepts(t: Transfer, encrypted: boolean): { maxBytes: number } | false {
    if (t.direction !== "in" || t.ipmsg || !encrypted) return false;
    const trust = this.#s.d.trusted(t.peer) ? "trusted" : undefined;
    if (!autoAcceptsImages(this.#setting, t, trust)) return false;
    const room = this.#s.room(this.#s.d.options.downloads, t.bytes);
    if (room) {
      this.#s.log.warn("Pictures from {name} wait to be accepted: {room}", { name: this.#s.d.peerName(t.peer), room });
      return false;
    }
    return { maxBytes: this.#setting.maxBytes };
  }

  /**
   * File `n` of transfer `id`, checked and open.
   *
   * @throws {FileError} 404 no such transfer or file, 409 not received (yet) or changed since, 403 a path that
   * leads out of the transfer's folder, 410 removed since, 501 a file sent to an IP Messenger user.
   */
  async open(id: string, n: number): Promise<ServedFile> {
    const t = this.#s.find(id);
    const what = `File ${n} of transfer ${t.id.slice(0, 8)}`;
    const src = this.#source(t, n, what);
    if (src.folder) {
      const { dir, rel } = src.folder;
      const [real, base] = await Promise.all([Deno.realPath(src.path), Deno.realPath(dir)]).catch((e) => {
        throw gone(what, e);
      });
      if (real !== `${base}/${rel}`) {
        throw new FileError(`${what} is not served: a symbolic link now stands in its path (${rel})`, 403);
      }
    }
    let file: Deno.FsFile;
    try {
      file = await Deno.open(src.path, { read: true });
    } catch (e) {
      throw gone(what, e);
    }
    try {
      const info = await file.stat();
      if (src.folder) {
        // What was opened is what was checked: not a link or a file put there since.
        const now = await Deno.lstat(src.path).catch(() => undefined);
        if (!now?.isFile || now.ino !== info.ino || now.dev !== info.dev) {
          throw new FileError(`${what} changed while it was opened`, 409);
        }
      }
      if (!info.isFile) throw new FileError(`${what} is no longer a file`, 409);
      const changed = (why: string) =>
        new FileError(
          `${what} changed since it was ${t.direction === "in" ? "received" : "offered"} (${why}): not served`,
          409,
        );
      if (info.size !== src.size) throw changed(`${info.size} bytes, not ${src.size}`);
      const mtime = info.mtime?.getTime();
      if (src.sha256 && info.size <= HASH_CHECK_MAX_BYTES) {
        const key = `${info.dev}:${info.ino}:${info.size}:${mtime}:${info.ctime?.getTime()}`;
        if (this.#verified.get(key) !== src.sha256) {
          if (await hashOpen(file) !== src.sha256) throw changed("its SHA-256 differs");
          this.#verified.delete(key);
          this.#verified.set(key, src.sha256);
          if (this.#verified.size > VERIFIED_KEEP) this.#verified.delete(this.#verified.keys().next().value!);
          await file.seek(0, Deno.SeekMode.Start);
        }
      } else if (src.mtime !== undefined && mtime !== src.mtime) throw changed("its modification time differs");
      const type = sniffImage(await readHead(file));
      await file.seek(0, Deno.SeekMode.Start);
      return {
        file,
        size: info.size,
        type: type ?? "application/octet-stream",
        disposition: contentDisposition(type ? "inline" : "attachment", src.name),
        etag: src.sha256 ? `"${src.sha256}"` : `"${info.ino}-${info.size}-${mtime}"`,
      };
    } catch (e) {
      file.close();
      throw e instanceof FileError ? e : new FileError(`${what} cannot be read: ${(e as Error).message}`, 409);
    }
  }

  /** Where file `n` of `t` is and what it must still be; a FileError when there is none to serve. */
  #source(t: Transfer, n: number, what: string): Source {
    const count = t.ipmsg ? t.ipmsg.files.length : t.count;
    if (!Number.isSafeInteger(n) || n < 0 || n >= count) {
      throw new FileError(
        `Transfer ${t.id.slice(0, 8)} has ${count === 1 ? "1 file" : `${count} files`}: ${n} is not the index of one${
          count > 0 ? ` (0 to ${count - 1})` : ""
        }`,
        404,
      );
    }
    const notHere = (failed: string | null | undefined) => {
      const why = failed
        ? `could not be written (${failed})`
        : finished(t.state)
        ? "was not received"
        : "is not received yet";
      return new FileError(`${what} ${why}`, 409);
    };
    if (t.ipmsg) {
      const im = t.ipmsg;
      if (t.direction === "out") throw new FileError(`${what} was offered to an IP Messenger user: not served`, 501);
      const f = im.files[n]!;
      if (f.kind !== IPMSG_FILE.REGULAR) throw new FileError(`${what} is a folder: not served`, 409);
      const dest = im.dest[n];
      if (!im.done[n] || !dest || !t.dir) throw notHere(im.failed?.[n]);
      return {
        path: `${t.dir}/${dest}`,
        folder: { dir: t.dir, rel: dest },
        size: f.size,
        // IP Messenger has no checksum: the one taken when the file came, for files up to 64 MiB.
        sha256: im.sha256?.[n] ?? undefined,
        mtime: f.mtime ? f.mtime * 1000 : undefined,
        name: dest,
      };
    }
    const f = this.#s.files(t)[n];
    if (t.direction === "in") {
      if (!f?.done || !f.dest || !t.dir) throw notHere(f?.failed);
      const rel = f.dest;
      return {
        path: `${t.dir}/${rel}`,
        folder: { dir: t.dir, rel },
        size: f.size,
        sha256: f.sha256,
        mtime: f.mtime,
        name: rel,
      };
    }
    if (!f?.source) throw new FileError(`${what} is no longer kept here`, 410);
    return { path: f.source, size: f.size, sha256: f.sha256, mtime: f.mtime, name: f.path };
  }
}

/** Where a file to serve is, and what it must still be. */
interface Source {
  path: string;
  /** Received: the folder it must still be inside, and its path there (no symbolic link on the way). */
  folder?: { dir: string; rel: string };
  size: number;
  sha256?: string;
  /** Checked when no SHA-256 is (a file over 64 MiB, or one from IP Messenger without one). */
  mtime?: number;
  name: string;
}

/** A file that cannot be found or opened where it was. */
function gone(what: string, e: unknown): FileError {
  return e instanceof Deno.errors.NotFound
    ? new FileError(`${what} was removed or moved since`, 410)
    : new FileError(`${what} cannot be read: ${(e as Error).message}`, 409);
}
