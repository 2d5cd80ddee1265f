/**
 * The API's router, in hono's model: routes by method and path (`:name`
 * matches one segment), each resource's routes built on a router of its own
 * and merged into the app with {@link Router.route}, the checks every route
 * shares run in front of them as middleware ({@link Router.use}). Trailing
 * slashes are ignored, HEAD is GET without the body, an unknown path is a
 * 404 naming the endpoints, a known path with another method a 405 naming
 * its methods, and a route's {@link HttpError} its JSON error.
 *
 * @module
 */
import { HttpError, jsonError } from "./request.ts";

/** The `:name` segments of a route's path, as they came (not percent-decoded). */
export type Params = Record<string, string>;
/** Answers a request a route matched. */
export type Handler = (req: Request, url: URL, params: Params) => Response | Promise<Response>;
/**
 * Runs in front of the routes: answers the request itself, or hands it on
 * with `next`. `path` is the URL's path without trailing slashes.
 */
export type Middleware = (req: Request, url: URL, path: string, next: () => Promise<Response>) => Promise<Response>;

type Method = "GET" | "POST" | "PUT";
type Route = Partial<Record<Method, Handler>>;
type Pattern = { path: string; re: RegExp; names: string[]; route: Route };

/** Routes and the middleware in front of them; {@link handle} is the `Request → Response` function. */
export class Router {
  /** Paths without parameters, in the order they were added (the 404 lists them). */
  readonly #exact = new Map<string, Route>();
  readonly #patterns: Pattern[] = [];
  readonly #middleware: Middleware[] = [];

  get(path: string, h: Handler): this {
    return this.#on("GET", path, h);
  }
  post(path: string, h: Handler): this {
    return this.#on("POST", path, h);
  }
  put(path: string, h: Handler): this {
    return this.#on("PUT", path, h);
  }

  /** Runs `m` in front of every route, after the middleware added before it. */
  use(m: Middleware): this {
    this.#middleware.push(m);
    return this;
  }

  /** Adds every route of `sub` (paths in full, as `sub` has them). */
  route(sub: Router): this {
    for (const [path, route] of sub.#exact) this.#add(path, route);
    for (const p of sub.#patterns) this.#add(p.path, p.route);
    return this;
  }

  /** Every route, as `METHOD /path`, in the order added (exact paths first). */
  routes(): string[] {
    const all = [...this.#exact].map(([path, route]) => ({ path, route })).concat(this.#patterns);
    return all.flatMap(({ path, route }) => Object.keys(route).map((method) => `${method} ${path}`));
  }

  /** Answers a request: the middleware in order, then the route. */
  handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const path = url.pathname.length > 1 ? url.pathname.replace(/\/+$/, "") : url.pathname;
    const next = (i: number): Promise<Response> =>
      i < this.#middleware.length
        ? this.#middleware[i]!(req, url, path, () => next(i + 1))
        : this.#dispatch(req, url, path);
    return next(0);
  }

  #add(path: string, route: Route): void {
    for (const [method, h] of Object.entries(route)) this.#on(method as Method, path, h);
  }

  #on(method: Method, path: string, h: Handler): this {
    if (!path.includes("/:")) {
      const route = this.#exact.get(path) ?? {};
      this.#exact.set(path, { ...route, [method]: h });
      return this;
    }
    let p = this.#patterns.find((p) => p.path === path);
    if (!p) {
      const names: string[] = [];
      const source = path.replace(/:(\w+)/g, (_, name: string) => (names.push(name), "([^/]+)"));
      this.#patterns.push(p = { path, re: new RegExp(`^${source}$`), names, route: {} });
    }
    p.route[method] = h;
    return this;
  }

  async #dispatch(req: Request, url: URL, path: string): Promise<Response> {
    let route = this.#exact.get(path);
    let params: Params = {};
    for (const p of route ? [] : this.#patterns) {
      const m = p.re.exec(path);
      if (!m) continue;
      route = p.route;
      params = Object.fromEntries(p.names.map((name, i) => [name, m[i + 1]!]));
      break;
    }
    if (!route) {
      return jsonError(404, `No such endpoint: ${url.pathname}; try ${[...this.#exact.keys()].join(", ")}`);
    }
    const method = req.method === "HEAD" ? "GET" : req.method;
    const h = route[method as Method];
    if (!h) {
      const allow = Object.keys(route).join(", ");
      return jsonError(405, `Method ${req.method} not allowed on ${path}; use ${allow}`, { allow });
    }
    try {
      const res = await h(req, url, params);
      return req.method === "HEAD" ? new Response(null, { status: res.status, headers: res.headers }) : res;
    } catch (e) {
      if (e instanceof HttpError) return jsonError(e.status, e.message, {}, e.extra);
      return jsonError(500, `Internal error: ${(e as Error).message}`);
    }
  }
}
