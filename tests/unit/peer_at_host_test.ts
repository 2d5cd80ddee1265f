/**
 * The README's PEER form `bob@host2` (src/node/directory.ts): a peer named
 * bob on the host host2, whatever its display name looks like; several
 * matches are listed, never guessed, also when one of them is a peer whose
 * name is `bob@host2` itself, or an IP Messenger user whose hostname is
 * only what its packets claim.
 */
import assert from "node:assert/strict";
import type { DaemonEvent, PeerLookup } from "../../src/api/types.ts";
import { Directory, nameOnHost } from "../../src/node/directory.ts";
import type { ServiceContext } from "../../src/node/service.ts";
import type { IpmsgPeer } from "../../src/protocol/ipmsg.ts";
import type { Peer } from "../../src/protocol/roster.ts";
import { Pins } from "../../src/security/pins.ts";
import { Store } from "../../src/storage/store.ts";
import type { OnlinePeer } from "../../src/node/services/lanchat.ts";

async function withDirectory(
  events: DaemonEvent[],
  f: (d: Directory) => void,
  online: OnlinePeer[] = [],
): Promise<void> {
  const dir = Deno.makeTempDirSync({ prefix: "lanchat-at-host-" });
  const store = await Store.open(dir);
  try {
    const d = new Directory(store, new Pins(store, () => {}));
    d.start({ io: { now: () => 0 }, wall: (t: number) => t, every: () => {} } as unknown as ServiceContext);
    for (const e of events) d.onEvent(e, 0);
    d.addSource({ onlinePeers: () => online, nameOf: (id) => online.find((p) => p.id === id)?.name });
    f(d);
  } finally {
    store.close();
    Deno.removeSync(dir, { recursive: true });
  }
}

let n = 0;
/** A lanchat peer joining: `name` on `hostname`. */
function lanchat(name: string, hostname: string): DaemonEvent & { peer: Peer } {
  const id = (++n).toString(16).padStart(32, "a");
  return {
    type: "joined",
    peer: {
      id,
      name,
      hostname,
      addresses: [{ address: `198.18.0.${n}`, port: 47475, lastSeen: 0 }],
      lastSeen: 0,
      firstSeen: 0,
    } as unknown as Peer,
  };
}

/** An IP Messenger user: its nickname, login and host are what its packets say. */
function ipmsg(nickname: string, user: string, host: string): DaemonEvent & { peer: IpmsgPeer } {
  const id = (++n).toString(16).padStart(32, "c");
  return {
    type: "ipmsg-joined",
    peer: { id, user, host, nickname, address: `198.18.0.${n}`, port: 2425, lastSeen: 0, firstSeen: 0 } as IpmsgPeer,
  };
}

const found = (r: PeerLookup) => r.ok ? r.peer.id : `${r.reason}: ${r.candidates.map((c) => c.id).sort().join(",")}`;

Deno.test("bob@host2 names the peer called bob on host host2 (and Bob@HOST2 too), not a bob elsewhere", async () => {
  const bob2 = lanchat("bob", "host2");
  const bob3 = lanchat("bob", "host3");
  await withDirectory([bob2, bob3], (d) => {
    assert.equal(found(d.lookup("bob@host2")), bob2.peer.id);
    assert.equal(found(d.lookup("bob@host3")), bob3.peer.id);
    // Host names are not case-sensitive; a name is, but the case-blind rule comes next.
    assert.equal(found(d.lookup("bob@HOST2")), bob2.peer.id);
    assert.equal(found(d.lookup("Bob@host2")), bob2.peer.id);
    // No bob on host4, and no host at all: not a match by some other rule either.
    assert.equal(d.lookup("bob@host4").ok, false);
    assert.equal((d.lookup("bob@host4") as { reason: string }).reason, "unknown");
    assert.equal((d.lookup("bob@") as { reason: string }).reason, "unknown");
    // The old forms still work: the name alone is ambiguous, the host alone is one.
    assert.equal(found(d.lookup("bob")), `ambiguous: ${[bob2.peer.id, bob3.peer.id].sort().join(",")}`);
    assert.equal(found(d.lookup("host3")), bob3.peer.id);
  });
});

Deno.test("bob@host2 with two bobs on host2 is ambiguous, both listed with their host", async () => {
  const a = lanchat("bob", "host2");
  const b = lanchat("bob", "host2");
  await withDirectory([a, b], (d) => {
    const r = d.lookup("bob@host2");
    assert.equal(found(r), `ambiguous: ${[a.peer.id, b.peer.id].sort().join(",")}`);
    assert.deepEqual(!r.ok && r.candidates.map((c) => c.hostname), ["host2", "host2"]);
  });
});

Deno.test("a peer whose name is bob@host2 and a peer bob on host2 are both matches: listed, never the first found", async () => {
  // The default display name is user@hostname: a peer on h9 may call itself "bob@host2".
  const named = lanchat("bob@host2", "h9");
  const real = lanchat("bob", "host2");
  await withDirectory([named, real], (d) => {
    const r = d.lookup("bob@host2");
    assert.equal(found(r), `ambiguous: ${[named.peer.id, real.peer.id].sort().join(",")}`);
    assert.deepEqual(!r.ok && r.candidates.map((c) => `${c.name} on ${c.hostname}`).sort(), [
      "bob on host2",
      "bob@host2 on h9",
    ]);
  });
  // Alone, each is found: the default name on its own host is one peer, not two.
  const usual = lanchat("bob@host2", "host2");
  await withDirectory([usual], (d) => assert.equal(found(d.lookup("bob@host2")), usual.peer.id));
});

Deno.test("a name holding @ itself is named in full before @HOST (the host is after the last @)", async () => {
  const work = lanchat("bob@work", "host2");
  const other = lanchat("bob", "host2");
  await withDirectory([work, other], (d) => {
    assert.equal(found(d.lookup("bob@work@host2")), work.peer.id);
    assert.equal(found(d.lookup("bob@work")), work.peer.id, "its name, exactly");
    assert.equal(found(d.lookup("bob@host2")), other.peer.id, "bob@work is not bob");
  });
  assert.deepEqual(nameOnHost("a@b@c") && [nameOnHost("a@b@c")!.name, nameOnHost("a@b@c")!.host], ["a@b", "c"]);
  assert.equal(nameOnHost("@lab"), undefined);
  assert.equal(nameOnHost("bob@"), undefined);
  assert.equal(nameOnHost("bob"), undefined);
});

Deno.test("an IP Messenger user is NICK@HOST or LOGIN@HOST by the host its packets name; one claiming a lanchat peer's host and name is ambiguous with it", async () => {
  const tux = ipmsg("tux", "root", "vm");
  const real = lanchat("bob", "host2");
  // Anyone on the LAN can send an IP Messenger entry saying it is bob on host2.
  const liar = ipmsg("bob", "mallory", "host2");
  await withDirectory([tux, real, liar], (d) => {
    assert.equal(found(d.lookup("tux@vm")), tux.peer.id);
    assert.equal(found(d.lookup("tux@VM")), tux.peer.id);
    const r = d.lookup("bob@host2");
    assert.equal(found(r), `ambiguous: ${[real.peer.id, liar.peer.id].sort().join(",")}`);
    // Offline, an IP Messenger user is remembered by nickname and host: its login names it only while online.
    assert.equal(d.lookup("root@vm").ok, false);
  });
  const p = tux.peer;
  const online: OnlinePeer = {
    id: p.id,
    name: p.nickname,
    hostname: p.host,
    user: p.user,
    endpoints: [`${p.address}:${p.port}`],
    protocol: "ipmsg",
  };
  await withDirectory([tux, real], (d) => {
    assert.equal(found(d.lookup("root@vm")), tux.peer.id);
    assert.equal(found(d.lookup("tux@vm")), tux.peer.id);
  }, [online]);
});

Deno.test("id:HEX is an id prefix only; a bare prefix that a name also takes is ambiguous, never the name", async () => {
  const bob = lanchat("bob", "host2");
  bob.peer.id = "68c2bbcb" + bob.peer.id.slice(8); // an id no other here starts with
  const prefix = bob.peer.id.slice(0, 8);
  const mallory = lanchat(prefix, "host9");
  const named = lanchat(`id:${prefix}`, "host9");
  await withDirectory([bob, mallory, named], (d) => {
    const ids = (r: PeerLookup) => r.ok ? [r.peer.id] : r.candidates.map((c) => c.id).sort();
    assert.deepEqual(ids(d.lookup(`id:${prefix}`)), [bob.peer.id]);
    assert.deepEqual(ids(d.lookup(`ID:${prefix.toUpperCase()}`)), [bob.peer.id]);
    const bare = d.lookup(prefix);
    assert.equal(bare.ok, false);
    assert.deepEqual(ids(bare), [bob.peer.id, mallory.peer.id].sort());
    // A name no id starts with is still a name; `id:` with no such id is unknown, never the peer called so.
    assert.deepEqual(ids(d.lookup("host9")).length, 2);
    const none = d.lookup("id:ffff0000");
    assert.ok(!none.ok && none.reason === "unknown");
  });
});
