/**
 * The status endpoint: `GET /peers`, `/status`, `/healthz`, `/metrics`.
 * {@link createHandler} is a plain `Request → Response` function, so tests
 * call it without a socket; {@link serveHttp} puts it on `Deno.serve`.
 *
 * @module
 */

/** What the HTTP layer needs from the daemon. */
export interface StatusSource {
  /** The roster, already serialized as pretty JSON with a trailing newline. */
  peersJson(): string;
  status(): unknown;
  metrics(): string;
}

type Route = Partial<Record<"GET" | "POST", (req: Request, url: URL) => Response | Promise<Response>>>;

function json(body: unknown, status = 200, headers: HeadersInit = {}): Response {
  return new Response(JSON.stringify(body, null, 2) + "\n", {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
  });
}

/** A JSON error body `{error, status}` with the given status. */
export function jsonError(status: number, message: string, headers: HeadersInit = {}): Response {
  return json({ error: message, status }, status, headers);
}

/** Builds the request handler over a {@link StatusSource}. */
export function createHandler(source: StatusSource): (req: Request) => Promise<Response> {
  const routes: Record<string, Route> = {
    "/peers": {
      GET: () =>
        new Response(source.peersJson(), {
          headers: { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" },
        }),
    },
    "/status": { GET: () => json(source.status(), 200, { "cache-control": "no-store" }) },
    "/healthz": { GET: () => new Response("ok\n", { headers: { "content-type": "text/plain; charset=utf-8" } }) },
    "/metrics": {
      GET: () =>
        new Response(source.metrics(), { headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" } }),
    },
  };
  return async (req: Request): Promise<Response> => {
    const url = new URL(req.url);
    const path = url.pathname.length > 1 ? url.pathname.replace(/\/+$/, "") : url.pathname;
    const route = routes[path];
    if (!route) return jsonError(404, `No such endpoint: ${url.pathname}; try /peers, /status, /healthz or /metrics`);
    const method = req.method === "HEAD" ? "GET" : req.method;
    const handler = route[method as keyof Route];
    if (!handler) {
      const allow = Object.keys(route).join(", ");
      return jsonError(405, `Method ${req.method} not allowed on ${path}; use ${allow}`, { allow });
    }
    try {
      const res = await handler(req, url);
      return req.method === "HEAD" ? new Response(null, { status: res.status, headers: res.headers }) : res;
    } catch (e) {
      return jsonError(500, `Internal error: ${(e as Error).message}`);
    }
  };
}

/** A running HTTP server. */
export interface HttpServer {
  addr: Deno.NetAddr;
  shutdown(): Promise<void>;
}

/**
 * Serves the handler on `hostname:port` (port 0 picks one).
 *
 * @throws {Error} with the address and cause when the port cannot be bound.
 */
export function serveHttp(hostname: string, port: number, handler: (req: Request) => Promise<Response>): HttpServer {
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({ hostname, port, onListen: () => {} }, handler);
  } catch (e) {
    const why = e instanceof Deno.errors.AddrInUse ? "address already in use" : (e as Error).message;
    throw new Error(`Cannot serve HTTP on ${hostname}:${port}: ${why}; pick another with --http HOST:PORT`, {
      cause: e,
    });
  }
  return { addr: server.addr, shutdown: () => server.shutdown() };
}
