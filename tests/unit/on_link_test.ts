/** Our subnets: which addresses are edges (never a peer's) and which are on the link a query came in on. */
import assert from "node:assert/strict";
import type { DaemonIo } from "../../src/node/options.ts";
import { OnLink } from "../../src/node/on_link.ts";

function onLink(): OnLink {
  const io = {
    readInterfaces: () => ({
      addresses: [
        { name: "eth0", address: "198.18.0.11", netmask: "255.255.255.128", family: "IPv4" },
        { name: "eth1", address: "198.18.0.139", netmask: "255.255.255.128", family: "IPv4" },
        { name: "p2p", address: "198.18.0.201", netmask: "255.255.255.255", family: "IPv4" },
      ],
      down: new Set<string>(),
    }),
  } as unknown as DaemonIo;
  const l = new OnLink();
  l.refresh(io, [
    { interface: "eth0", address: "198.18.0.11", broadcast: "198.18.0.127" },
    { interface: "eth1", address: "198.18.0.139", broadcast: "198.18.0.255" },
    { interface: "p2p", address: "198.18.0.201", broadcast: "198.18.0.201" },
  ]);
  return l;
}

Deno.test("the network and directed-broadcast addresses of our subnets are edges, their hosts are not", () => {
  const l = onLink();
  for (const a of ["198.18.0.0", "198.18.0.127", "198.18.0.128", "198.18.0.255"]) assert.equal(l.edge(a), true, a);
  for (const a of ["198.18.0.1", "198.18.0.126", "198.18.0.129", "198.18.0.201", "10.0.0.255"]) {
    assert.equal(l.edge(a), false, a);
  }
});

Deno.test("an address is within the subnet of the interface it came in on, not of another one", () => {
  const l = onLink();
  assert.equal(l.within("198.18.0.12", "198.18.0.11"), true);
  assert.equal(l.within("198.18.0.140", "198.18.0.11"), false);
  assert.equal(l.within("198.18.0.140", "198.18.0.139"), true);
  assert.equal(l.within("203.0.113.1", "198.18.0.11"), false);
});
