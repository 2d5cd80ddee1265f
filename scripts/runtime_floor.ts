/**
 * Memory floor for the idle-RSS benchmark: a Deno process that loads what
 * the daemon loads (commander, LogTape, node:sqlite, node:crypto) and does
 * the least of the daemon's idle work with them: a UDP socket whose signed
 * hellos it verifies (Ed25519, node:crypto), an HTTP server, a SQLite
 * database in WAL mode with a write, one log line. No roster, no protocol.
 * Its RSS beside the daemon's says how much of the daemon's is the runtime.
 *
 *   deno run -A scripts/runtime_floor.ts UDP_PORT
 *
 * Prints "ready"; on SIGTERM, a JSON line with the datagrams it verified and its RSS.
 */
import { Command } from "commander";
import { configureSync, getLogger, getTextFormatter } from "@logtape/logtape";
import { DatabaseSync } from "node:sqlite";
import { createPublicKey, verify } from "node:crypto";
import { Buffer } from "node:buffer";

const program = new Command().argument("<port>").parse(["deno", "floor", ...Deno.args]);
const port = Number(program.args[0]);
const format = getTextFormatter({ timestamp: "date-time-tz" });
configureSync({
  sinks: { stderr: (r) => Deno.stderr.writeSync(new TextEncoder().encode(format(r))) },
  loggers: [{ category: "floor", lowestLevel: "info", sinks: ["stderr"] }, {
    category: ["logtape", "meta"],
    lowestLevel: "warning",
    sinks: ["stderr"],
  }],
});
const dir = Deno.makeTempDirSync({ prefix: "lanchat-floor-" });
const db = new DatabaseSync(`${dir}/floor.db`);
db.exec("PRAGMA locking_mode = EXCLUSIVE; PRAGMA journal_mode = WAL; CREATE TABLE t (x TEXT)");
db.prepare("INSERT INTO t VALUES (?)").run("started");
const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => new Response("{}"));
const socket = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port });
getLogger("floor").info("listening on {port}", { port });
console.log("ready");

let verified = 0;
const keys = new Map<string, ReturnType<typeof createPublicKey>>();
Deno.addSignalListener("SIGTERM", () => {
  console.log(JSON.stringify({ verified, rssBytes: Deno.memoryUsage().rss }));
  socket.close();
  server.shutdown();
  db.close();
  Deno.removeSync(dir, { recursive: true });
  Deno.exit(0);
});
const buffer = new Uint8Array(65_536);
while (true) {
  let n: number;
  try {
    n = (await socket.receive(buffer))[0].length;
  } catch {
    break;
  }
  // A signed hello ends with the sender's public key (32) and signature (64).
  if (n < 96) continue;
  const bytes = buffer.subarray(0, n);
  const publicKey = bytes.subarray(n - 96, n - 64);
  const k = Buffer.from(publicKey).toString("base64url");
  let key = keys.get(k);
  if (!key) {
    key = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: k }, format: "jwk" });
    keys.set(k, key);
  }
  if (verify(null, bytes.subarray(0, n - 64), key, bytes.subarray(n - 64))) verified++;
}
