/**
 * The daemon's last resort (src/node/last_resort.ts, installed by `lanchat
 * daemon`): a rejection nothing handled and an exception thrown from a timer
 * are logged with their stack and counted, and the process goes on (without
 * it, either ends the process with exit 1).
 */
import assert from "node:assert/strict";

const LAST_RESORT = new URL("../../src/node/last_resort.ts", import.meta.url).href;
const LOG = new URL("../../src/common/log.ts", import.meta.url).href;
const CONFIG = new URL("../../deno.json", import.meta.url).pathname;

async function runScript(install: boolean): Promise<{ code: number; stderr: string; stdout: string }> {
  const dir = await Deno.makeTempDir({ prefix: "lanchat-last-resort-" });
  try {
    const script = `${dir}/script.ts`;
    await Deno.writeTextFile(
      script,
      [
        `import { installLastResort, unexpectedErrors } from ${JSON.stringify(LAST_RESORT)};`,
        `import { setupLogging } from ${JSON.stringify(LOG)};`,
        `setupLogging({ level: "info", format: "json" });`,
        install ? `installLastResort();` : ``,
        `async function sendsOnABrokenPipe() { throw new Deno.errors.BrokenPipe("Broken pipe (os error 32)"); }`,
        `const floating = sendsOnABrokenPipe();`,
        `setTimeout(() => { throw new Error("thrown from a timer"); }, 10);`,
        `// The UDP side of a daemon: a socket that still answers after both.`,
        `const socket = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });`,
        `await new Promise((r) => setTimeout(r, 300));`,
        `const port = (socket.addr as Deno.NetAddr).port;`,
        `await socket.send(new TextEncoder().encode("ping"), { transport: "udp", hostname: "127.0.0.1", port });`,
        `const [bytes] = await socket.receive();`,
        `console.log(JSON.stringify({ still: new TextDecoder().decode(bytes), unexpected: unexpectedErrors() }));`,
        `socket.close();`,
        `void floating;`,
      ].join("\n"),
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--config", CONFIG, "--allow-all", script],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("the last resort logs an unhandled rejection and an uncaught exception with their stacks, and the process goes on", async () => {
  const { code, stdout, stderr } = await runScript(true);
  assert.equal(code, 0, stderr);
  assert.deepEqual(JSON.parse(stdout.trim()), { still: "ping", unexpected: 2 });
  const lines = stderr.trim().split("\n").map((l) => JSON.parse(l));
  const rejection = lines.find((l) => l.properties?.what === "unhandled rejection");
  assert.ok(rejection, stderr);
  assert.equal(rejection.level, "ERROR");
  assert.match(rejection.properties.error, /BrokenPipe: Broken pipe/);
  assert.match(rejection.properties.stack, /sendsOnABrokenPipe/);
  const thrown = lines.find((l) => l.properties?.what === "uncaught exception");
  assert.ok(thrown, stderr);
  assert.match(thrown.properties.stack, /thrown from a timer/);
});

Deno.test("without it, the same rejection ends the process (what the last resort is for)", async () => {
  const { code, stderr } = await runScript(false);
  assert.equal(code, 1);
  assert.match(stderr, /Uncaught \(in promise\) BrokenPipe/);
});
