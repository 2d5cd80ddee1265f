/**
 * The peers: the roster (`GET /peers`), which peer a text means
 * (`GET /resolve`), and a peer's pinned node key (`POST /trust` confirms it,
 * `POST /forget` drops it, `GET /peers/PEER/verify` gives the safety number
 * to compare before trusting it).
 *
 * @module
 */
import { StoreError } from "../../storage/store.ts";
import { HttpError, json, peerField } from "../request.ts";
import type { Api } from "../api.ts";
import { Router } from "../router.ts";
import { decodedSegment, resolve } from "./lookup.ts";

/** `/peers`, `/resolve`, and a peer's pinned key: `/peers/PEER/verify`, `/trust`, `/forget`. */
export function peerRoutes(api: Api): Router {
  return new Router()
    .get(
      "/peers",
      (_req, url) =>
        /^(1|true|yes)$/.test(url.searchParams.get("all") ?? "")
          ? json(api.allPeers())
          : new Response(api.peersBody() as Uint8Array<ArrayBuffer>, {
            headers: { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" },
          }),
    )
    .get("/resolve", (_req, url) => {
      const q = url.searchParams.get("peer");
      if (!q) throw new HttpError(400, "Query parameter peer is required");
      return json(resolve(api, q));
    })
    .get("/peers/:peer/verify", (_req, _url, params) => {
      const peer = resolve(api, decodedSegment(params.peer!));
      return json(api.verifyPeer(peer.id));
    })
    .post("/trust", async (req) => {
      const peer = resolve(api, await peerField(req));
      try {
        const pin = api.trustPeer(peer.id);
        return json({ id: pin.id, name: pin.name, trust: pin.trust });
      } catch (e) {
        if (e instanceof RangeError) throw new HttpError(404, e.message);
        if (e instanceof StoreError) throw new HttpError(507, e.message);
        throw e;
      }
    })
    .post("/forget", async (req) => {
      const peer = resolve(api, await peerField(req));
      let forgotten: boolean;
      try {
        forgotten = api.forgetPeer(peer.id);
      } catch (e) {
        if (e instanceof StoreError) throw new HttpError(507, e.message);
        throw e;
      }
      if (!forgotten) throw new HttpError(404, `No key is pinned for ${peer.name} (${peer.id})`);
      return json({ id: peer.id, name: peer.name, forgotten: true });
    });
}
