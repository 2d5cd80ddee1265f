/**
 * A daemon started through a command (an installed launcher, `ip netns exec
 * …`), its stderr collected: for the install and service tests, which start
 * it as a user would rather than through {@link DaemonProcess}.
 */

/** A launched daemon; {@link kill} it in `finally`. */
export class LaunchedDaemon {
  readonly child: Deno.ChildProcess;
  /** Everything it wrote on stderr so far. */
  stderr = "";
  #reading: Promise<void>;
  #exited = false;
  #watching: Promise<void>;

  constructor(cmd: string, args: string[], env?: Record<string, string>) {
    const child = new Deno.Command(cmd, { args, env, stdout: "null", stderr: "piped" }).spawn();
    this.child = child;
    this.#reading = (async () => {
      for await (const c of child.stderr.pipeThrough(new TextDecoderStream())) this.stderr += c;
    })();
    this.#watching = child.status.then(() => {
      this.#exited = true;
    });
  }

  /** Waits (up to 20 s) until it says it started; false if it did not (its stderr says why). */
  async started(): Promise<boolean> {
    for (let i = 0; i < 400 && !/ started as /.test(this.stderr) && !this.#exited; i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    return / started as /.test(this.stderr);
  }

  /** Sends SIGTERM; resolves to its exit code once its stderr is read. */
  async stop(): Promise<number> {
    this.child.kill("SIGTERM");
    const { code } = await this.child.status;
    await this.#reading;
    return code;
  }

  /** Kills it if it still runs. */
  async kill(): Promise<void> {
    if (!this.#exited) {
      try {
        this.child.kill("SIGKILL");
      } catch { /* gone meanwhile */ }
    }
    await this.#watching;
    await this.#reading;
  }
}
