/** `lanchat chat` (or any CLI command that reads standard input) as a process a test types into and reads. */
import { DAEMON_PERMISSIONS, ownerEnv } from "./daemon_process.ts";

/** A CLI process with piped stdin whose stdout can be awaited line by line. */
export function chatProcess(args: string[]) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--config",
      new URL("../../deno.json", import.meta.url).pathname,
      ...DAEMON_PERMISSIONS,
      new URL("../../main.ts", import.meta.url).pathname,
      ...args,
    ],
    env: ownerEnv(args),
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let out = "";
  const waiters: { re: RegExp; resolve: () => void }[] = [];
  (async () => {
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      out += chunk;
      for (const w of [...waiters]) if (w.re.test(out)) waiters.splice(waiters.indexOf(w), 1) && w.resolve();
    }
  })();
  const stderr = new Response(child.stderr).text();
  const writer = child.stdin.getWriter();
  return {
    status: child.status,
    output: () => out,
    waitFor: (re: RegExp) =>
      re.test(out) ? Promise.resolve() : new Promise<void>((resolve, reject) => {
        waiters.push({ re, resolve });
        setTimeout(() => reject(new Error(`chat never printed ${re}; got:\n${out}`)), 10_000);
      }),
    write: (s: string) => writer.write(new TextEncoder().encode(s)),
    end: async () => {
      await writer.close();
      await stderr;
    },
    /** Ends a command that runs until interrupted (inbox --follow): SIGINT, as Ctrl-C. */
    interrupt: async () => {
      child.kill("SIGINT");
      await writer.close().catch(() => {});
      await stderr;
      return await child.status;
    },
  };
}
