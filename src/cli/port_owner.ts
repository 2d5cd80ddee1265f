/**
 * Who listens on a TCP port of this host, from Linux's socket tables
 * (`ss -ltne`, or the `/proc/net/tcp` text it reads): the CLI sends
 * the token of the owner's data directory to a loopback port only when every
 * socket listening there is the token file's owner's, so another user who
 * binds the port while the daemon is down does not learn it.
 *
 * @module
 */

/** TCP state LISTEN in the socket tables. */
const LISTEN = "0A";

/** The uids of the sockets listening on `port` in one socket table's text (`/proc/net/tcp` format). */
export function listenerUidsIn(table: string, port: number): number[] {
  const uids: number[] = [];
  for (const line of table.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    // sl local_address rem_address st tx:rx tr:when retrnsmt uid …
    if (f.length < 8 || f[3] !== LISTEN) continue;
    const local = f[1]!;
    if (parseInt(local.slice(local.lastIndexOf(":") + 1), 16) !== port) continue;
    uids.push(Number(f[7]));
  }
  return uids;
}

/**
 * The uids listening on TCP `port` of this host (IPv4 and IPv6), from `ss`
 * (iproute2: Deno lets a program read /proc/net/tcp only with every
 * permission); undefined when `ss` cannot run.
 */
export function listenerUids(port: number): number[] | undefined {
  try {
    const out = new Deno.Command("ss", { args: ["-H", "-l", "-t", "-n", "-e", `sport = :${port}`] }).outputSync();
    if (!out.success) return undefined;
    return listenerUidsOfSs(new TextDecoder().decode(out.stdout));
  } catch {
    return undefined; // not installed, or not allowed to run
  }
}

/** The uids in `ss -H -l -t -n -e` lines (ss leaves `uid:` out for root's sockets). */
export function listenerUidsOfSs(text: string): number[] {
  return text.split("\n").filter((l) => l.trim()).map((l) => Number(/\buid:(\d+)/.exec(l)?.[1] ?? 0));
}
