/**
 * Grows a data directory's history to a given number of messages, through
 * the daemon's own Store calls (as a long-running daemon would have stored
 * them: half received from bob, half sent to and acked by carol, each
 * indexed for search in the write that stores it), for the history
 * benchmark. Texts are ~100 bytes of made-up words, with known needles:
 *
 * - `zebracorn` in the first 5 messages only (a rare hit in the oldest history),
 * - `deadline` in one message in 1,000,
 * - `午饭吃什么` in one message in 100,
 * - `qxqxqxq` in none (a miss).
 *
 * Message i entered history at {@link timeOf}(i): one a ~31.5 s, a year per
 * million. The daemon must not be running on the directory.
 *
 *   deno run --allow-read --allow-write scripts/history_fill.ts DIR COUNT [OFFERS]
 *
 * OFFERS, a JSON file `{peer, offers: [{id, names, bytes}, …]}` of file
 * transfers the daemon of DIR received from `peer` (pictures, for the web
 * benchmark): "bob" is then that peer, and as many of his messages, spread
 * evenly, are offers of them instead (as a file offer's message is), so
 * the page shows their thumbnails. Its messages continue the peer's
 * sequence numbers far past the real peer's: that peer's own later
 * messages would be taken for ones already had.
 *
 * Prints one JSON line: messages before and after, and the fill rate.
 */
import { Store } from "../src/storage/store.ts";
import { noteText } from "../src/protocol/files.ts";

export const BOB = "b0b".padEnd(32, "0");
export const CAROL = "ca201".padEnd(32, "0");
const T0 = Date.UTC(2025, 11, 1);
/** When message i (1-based) entered history. */
export const timeOf = (i: number): number => T0 + i * 31_536;

/** A small seeded generator, so every run makes the same history. */
function words(seed: number): () => string {
  let s = seed >>> 0 || 1;
  const next = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0);
  const syllables = ["ka", "lo", "mi", "ne", "ru", "ta", "vo", "shi", "pe", "da", "go", "zu", "fa", "re", "no", "bi"];
  return () => {
    let w = "";
    for (let n = 2 + ((next() >>> 16) % 3); n > 0; n--) w += syllables[(next() >>> 16) % syllables.length];
    return w;
  };
}

export function textOf(i: number): string {
  const word = words(i * 2654435761);
  const parts: string[] = [];
  if (i <= 5) parts.push("zebracorn");
  if (i % 1000 === 0) parts.push("deadline");
  if (i % 100 === 50) parts.push("午饭吃什么");
  while (parts.join(" ").length < 95) parts.push(word());
  return parts.join(" ");
}

const idOf = (i: number) => i.toString(16).padStart(32, "0");

if (import.meta.main) {
  const [dir, countArg, offersFile] = Deno.args;
  if (!dir || !countArg) throw new Error("usage: history_fill.ts DIR COUNT [OFFERS]");
  const target = Number(countArg);
  const given: { peer: string; offers: { id: string; names: string[]; bytes: number }[] } | undefined = offersFile
    ? JSON.parse(await Deno.readTextFile(offersFile))
    : undefined;
  const offers = given?.offers ?? [];
  const bob = given?.peer ?? BOB;
  const store = await Store.open(dir);
  store.startGroupCommit(() => {});
  try {
    const from = store.lastCursor() + 1;
    // A real peer (OFFERS) is known already, by its own name and address; the made-up bob is remembered.
    if (bob === BOB) {
      store.rememberPeer({
        id: BOB,
        protocol: "lanchat",
        name: "bob@bench",
        hostname: "bench",
        address: "127.0.0.2",
        port: 9,
        lastSeen: timeOf(from),
      });
    }
    store.rememberPeer({
      id: CAROL,
      protocol: "lanchat",
      name: "carol@bench",
      hostname: "bench",
      address: "127.0.0.3",
      port: 9,
      lastSeen: timeOf(from),
    });
    let seq = store.expectedSeq(bob) - 1;
    const t0 = performance.now();
    // Bob's messages are every other one: an offer every `every` of them, the first half-way into the first stretch.
    const every = offers.length > 0 ? Math.max(1, Math.floor((target - from + 1) / 2 / offers.length)) : 0;
    const offerAt = (i: number) => {
      const j = (i - from) >> 1;
      const k = every > 0 && j % every === every >> 1 ? Math.floor(j / every) : -1;
      const o = offers[k];
      return o && noteText({
        kind: "offer",
        offer: o.id,
        count: o.names.length,
        bytes: o.bytes,
        names: o.names.slice(0, 20),
        manifest: "0".repeat(64),
        expires: timeOf(i) + 7 * 24 * 3600_000,
      });
    };
    for (let i = from; i <= target; i++) {
      const at = timeOf(i);
      if (i % 2) {
        seq++;
        store.release(
          bob,
          [{
            id: idOf(i),
            peer: bob,
            seq,
            text: offerAt(i) || textOf(i),
            sentAt: at,
            receivedAt: at,
            gapBefore: 0,
            late: false,
            wasHeld: false,
          }],
          seq + 1,
          at,
        );
      } else {
        store.insertOutgoing({ id: idOf(i), peer: CAROL, text: textOf(i), sentAt: at, status: "sent" });
        store.markDelivered(idOf(i), at + 3, 1);
      }
      if (i % 1000 === 0) {
        store.flush();
        store.commit();
      }
    }
    store.flush();
    store.commit();
    const seconds = (performance.now() - t0) / 1000;
    console.log(JSON.stringify({ from: from - 1, to: target, perSecond: Math.round((target - from + 1) / seconds) }));
  } finally {
    store.close();
  }
}
