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
import { FileError, type Transfer } from "./files_model.ts";
import type { FilesState } from "./files_state.ts";
import { readHead } from "./files_images.ts";
import { hashOpen } from "./files_offer.ts";

/** Files up to this size are checked by their SHA-256 before they are served; larger ones by size and mtime. */
export const HASH_CHECK_MAX_BYTES = 64 * 1024 * 1024;
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
   */
  autoAccepts(t: Transfer, encrypted: boolean): boolean {
    if (t.direction !== "in" || t.ipmsg || !encrypted) return false;
    const trust = this.#s.d.trusted(t.peer) ? "trusted" : undefined;
    if (!autoAcceptsImages(this.#setting, t, trust)) return false;
    const room = this.#s.room(this.#s.d.options.downloads, t.bytes);
    if (room) {
      this.#s.log.warn("Pictures from {name} wait to be accepted: {room}", { name: this.#s.d.peerName(t.peer), room });
      return false;
    }
    return true;
  }

  /**
   * File `n` of transfer `id`, checked and open.
   *
   * @throws {FileError} 404 no such transfer or file, 409 not received (yet) or changed since, 403 a path that
   * leads out of the transfer's folder, 410 removed since, 501 an IP Messenger transfer.
   */
  async open(id: string, n: number): Promise<ServedFile> {
    const t = this.#s.find(id);
    const what = `File ${n} of transfer ${t.id.slice(0, 8)}`;
    if (t.ipmsg) throw new FileError(`${what} came from IP Messenger, which gives no checksum to check it by`, 501);
    if (!Number.isSafeInteger(n) || n < 0 || n >= t.count) {
      throw new FileError(
        `Transfer ${t.id.slice(0, 8)} has ${
          t.count === 1 ? "1 file" : `${t.count} files`
        }: ${n} is not the index of one${t.count > 0 ? ` (0 to ${t.count - 1})` : ""}`,
        404,
      );
    }
    const f = this.#s.files(t)[n];
    let path: string;
    if (t.direction === "in") {
      if (!f?.done || !f.dest || !t.dir) {
        const why = f?.failed
          ? `could not be written (${f.failed})`
          : finished(t.state)
          ? "was not received"
          : "is not received yet";
        throw new FileError(`${what} ${why}`, 409);
      }
      path = `${t.dir}/${f.dest}`;
      const [real, dir] = await Promise.all([Deno.realPath(path), Deno.realPath(t.dir)]).catch((e) => {
        throw gone(what, e);
      });
      if (real !== `${dir}/${f.dest}`) {
        throw new FileError(`${what} is not served: a symbolic link now stands in its path (${f.dest})`, 403);
      }
    } else {
      if (!f?.source) throw new FileError(`${what} is no longer kept here`, 410);
      path = f.source;
    }
    let file: Deno.FsFile;
    try {
      file = await Deno.open(path, { read: true });
    } catch (e) {
      throw gone(what, e);
    }
    try {
      const info = await file.stat();
      if (t.direction === "in") {
        // What was opened is what was checked: not a link or a file put there since.
        const now = await Deno.lstat(path).catch(() => undefined);
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
      if (info.size !== f.size) throw changed(`${info.size} bytes, not ${f.size}`);
      if (info.size <= HASH_CHECK_MAX_BYTES) {
        const key = `${info.dev}:${info.ino}:${info.size}:${info.mtime?.getTime()}:${info.ctime?.getTime()}`;
        if (this.#verified.get(key) !== f.sha256) {
          if (await hashOpen(file) !== f.sha256) throw changed("its SHA-256 differs");
          this.#verified.delete(key);
          this.#verified.set(key, f.sha256);
          if (this.#verified.size > VERIFIED_KEEP) this.#verified.delete(this.#verified.keys().next().value!);
          await file.seek(0, Deno.SeekMode.Start);
        }
      } else if (info.mtime?.getTime() !== f.mtime) throw changed("its modification time differs");
      const type = sniffImage(await readHead(file));
      await file.seek(0, Deno.SeekMode.Start);
      return {
        file,
        size: info.size,
        type: type ?? "application/octet-stream",
        disposition: contentDisposition(type ? "inline" : "attachment", f.dest ?? f.path),
        etag: `"${f.sha256}"`,
      };
    } catch (e) {
      file.close();
      throw e instanceof FileError ? e : new FileError(`${what} cannot be read: ${(e as Error).message}`, 409);
    }
  }
}

/** A file that cannot be found or opened where it was. */
function gone(what: string, e: unknown): FileError {
  return e instanceof Deno.errors.NotFound
    ? new FileError(`${what} was removed or moved since`, 410)
    : new FileError(`${what} cannot be read: ${(e as Error).message}`, 409);
}
