/**
 * The page and API on the LAN, for a phone (`lanchat web --lan`): opt-in,
 * opened only when the owner asks for a LAN link, on this host's LAN IPv4
 * addresses (those of the interfaces lanchat announces on, loopback left
 * out) at the HTTP port, each by its own listener. Its handler lets in
 * only the LAN session's cookie (api/access.ts `lan`): no bearer token, no
 * link made, and a `Host` that must be one of those addresses (a page
 * whose DNS name rebinds to the address is refused), with the same Origin
 * and Sec-Fetch-Site checks as on loopback. The listeners stay open until
 * the daemon stops.
 *
 * @module
 */
import type { HandlerWithStreams } from "../api/http.ts";
import { logger } from "../common/log.ts";
import { type HttpServer, serveHttp, type ServeOptions } from "./http_server.ts";

/** Connections each LAN listener holds at most (a phone or two; the loopback API keeps its own cap). */
export const LAN_MAX_CONNECTIONS = 64;

export interface LanWebDeps {
  /** The LAN handler, made once, answering to the host names in `hosts` (kept up to date here). */
  handler: (hosts: readonly string[]) => HandlerWithStreams;
  /** This host's LAN IPv4 addresses now. */
  addresses: () => string[];
  port: () => number;
  serve?: typeof serveHttp;
  options?: ServeOptions;
}

export class LanWeb {
  readonly #deps: LanWebDeps;
  readonly #servers = new Map<string, HttpServer>();
  readonly #hosts: string[] = [];
  #handler: HandlerWithStreams | undefined;

  constructor(deps: LanWebDeps) {
    this.#deps = deps;
  }

  /** The handler serving the LAN, once opened (its page streams count as pages open). */
  get handler(): HandlerWithStreams | undefined {
    return this.#handler;
  }

  /** The origins served (`http://ADDRESS:PORT`). */
  origins(): string[] {
    return [...this.#servers.values()].map((s) => `http://${s.addr.hostname}:${s.addr.port}`);
  }

  /**
   * Opens a listener on every LAN address not served yet (an address that
   * appeared since, too) and gives every origin served. Throws an Error
   * saying why when no LAN address can be served.
   */
  open(): string[] {
    const addresses = this.#deps.addresses().filter((a) => !a.startsWith("127."));
    if (addresses.length === 0 && this.#servers.size === 0) {
      throw new Error(
        "This host has no LAN address to serve the page on (no IPv4 address but loopback on the interfaces lanchat announces on)",
      );
    }
    const handler = this.#handler ??= this.#deps.handler(this.#hosts);
    const errors: string[] = [];
    for (const address of addresses) {
      if (this.#servers.has(address)) continue;
      try {
        const server = (this.#deps.serve ?? serveHttp)(address, this.#deps.port(), handler, {
          ...this.#deps.options,
          limits: { maxConnections: LAN_MAX_CONNECTIONS },
          onShutdown: () => handler.closeStreams(),
        });
        this.#servers.set(address, server);
        this.#hosts.push(address);
        logger("daemon").info(
          "Serving the web page on the LAN at {origin}, to the LAN session's cookie only (lanchat web --lan)",
          { origin: `http://${address}:${server.addr.port}` },
        );
      } catch (e) {
        errors.push((e as Error).message.replace(/; pick another with --http.*$/, ""));
      }
    }
    if (this.#servers.size === 0) throw new Error(errors.join("; "));
    return this.origins();
  }

  async shutdown(): Promise<void> {
    await Promise.allSettled([...this.#servers.values()].map((s) => s.shutdown()));
    this.#servers.clear();
  }
}
