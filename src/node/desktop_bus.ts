/**
 * Desktop notifications on the freedesktop.org session bus
 * (`org.freedesktop.Notifications`), through `gdbus call` (GLib's tool,
 * Debian's libglib2.0-bin): no D-Bus library in the process, and a bus or
 * notification server that misbehaves costs a child process that is
 * killed after {@link CALL_TIMEOUT_MS}, never the daemon.
 *
 * gdbus reads each argument as a GVariant in text form, and a string that
 * does not parse as one it wraps in quotes itself, without escaping
 * backslashes (so `\n` in a message would become a line break, and a text
 * like `"x"` would lose its quotes). Every argument here is therefore a
 * typed literal written by {@link gvariantString} and friends: nothing a
 * peer sends is read as GVariant syntax, nor as an option of gdbus (each
 * starts with `"` or `@`).
 *
 * @module
 */

/** How long a call may take before its gdbus is killed. */
export const CALL_TIMEOUT_MS = 10_000;

/** The notification server, as the notify service uses it (a fake in unit tests). */
export interface DesktopBus {
  /** The server's capabilities (`body-markup`, …). */
  capabilities(): Promise<string[]>;
  /** Shows a notification (replacing `replacesId` when not 0); its id. */
  notify(n: { replacesId: number; summary: string; body: string }): Promise<number>;
  /** Takes notification `id` off the screen (`CloseNotification`). */
  close(id: number): Promise<void>;
}

/** Why notifications cannot be shown at all (gdbus missing, not allowed to run): stop trying. */
export class BusUnavailable extends Error {
  override name = "BusUnavailable";
}

/**
 * A GVariant text-form string literal of `s`: quoted, with `\`, `"` and
 * every control character escaped, and a lone surrogate (text decoded from
 * a broken encoding) made U+FFFD, as a D-Bus string must be valid UTF-8.
 */
export function gvariantString(s: string): string {
  return `"${
    s.toWellFormed().replace(
      // deno-lint-ignore no-control-regex
      /[\\"\u0000-\u001f\u007f]/g,
      (c) => c === "\\" || c === '"' ? `\\${c}` : `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
    )
  }"`;
}

const DEST = ["--dest", "org.freedesktop.Notifications", "--object-path", "/org/freedesktop/Notifications"];

/** The arguments of `gdbus` for a call of the notification server's `method` with `values` (GVariant literals). */
function callArgs(method: string, values: string[] = []): string[] {
  const timeout = String(CALL_TIMEOUT_MS / 1000);
  return ["call", "--session", ...DEST, "--timeout", timeout, "--method", `org.freedesktop.Notifications.${method}`]
    .concat(values);
}

/** The arguments of `gdbus` for a Notify call. */
export function notifyArgs(n: { replacesId: number; summary: string; body: string }): string[] {
  return callArgs("Notify", [
    gvariantString("lanchat"), // app_name
    `@u ${Math.max(0, Math.min(0xffffffff, Math.trunc(n.replacesId)))}`,
    gvariantString("mail-message-new"), // app_icon (a name from the icon theme)
    gvariantString(n.summary),
    gvariantString(n.body),
    "@as []", // actions
    `@a{sv} {"category": <"im.received">, "desktop-entry": <"lanchat">}`,
    "@i -1", // expire_timeout: the server's default
  ]);
}

/** The arguments of `gdbus` for a CloseNotification call. */
export function closeArgs(id: number): string[] {
  return callArgs("CloseNotification", [`@u ${Math.max(0, Math.min(0xffffffff, Math.trunc(id)))}`]);
}

/** The session bus through `gdbus` (`command` replaceable in tests: a path that does not exist, say). */
export class GdbusBus implements DesktopBus {
  constructor(private readonly command = "gdbus") {}

  async capabilities(): Promise<string[]> {
    const out = await this.#call(callArgs("GetCapabilities"));
    return [...out.matchAll(/'([^'\\]*)'/g)].map((m) => m[1]!);
  }

  async notify(n: { replacesId: number; summary: string; body: string }): Promise<number> {
    const out = await this.#call(notifyArgs(n));
    const m = /\(uint32 (\d+),\)/.exec(out);
    return m ? Number(m[1]) : 0;
  }

  async close(id: number): Promise<void> {
    await this.#call(closeArgs(id));
  }

  async #call(args: string[]): Promise<string> {
    let out: Deno.CommandOutput;
    try {
      out = await new Deno.Command(this.command, {
        args,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
        signal: AbortSignal.timeout(CALL_TIMEOUT_MS + 2000),
      }).output();
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        throw new BusUnavailable(`${this.command} is not installed (Debian: apt-get install libglib2.0-bin)`);
      }
      if (e instanceof Deno.errors.PermissionDenied || e instanceof Deno.errors.NotCapable) {
        throw new BusUnavailable(`lanchat may not run ${this.command} (add it to --allow-run)`);
      }
      throw e;
    }
    if (!out.success) {
      const why = new TextDecoder().decode(out.stderr).trim().replace(/^Error:\s*/, "").split("\n")[0];
      throw new Error(why || `${this.command} exited with ${out.code}`);
    }
    return new TextDecoder().decode(out.stdout);
  }
}
