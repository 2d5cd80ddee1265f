// Pictures in a conversation (docs/web.md): a file offer of PNG, JPEG, GIF or WebP images shows them as thumbnails
// once they can be read (sent: at once; received: once done), from the daemon (`images[].url` of the transfer, served
// with its real type only for those raster types, checked by magic bytes); a click opens one full size in a dialog.
// Nothing else a peer sends is ever shown inline: no SVG, no HTML, no URL but the daemon's own transfer files.
// Pasting an image into the composer sends it (dropping one was there already).
import { $, api, el, hooks, onEvent, state } from "./core.js";
import { keepTransfer, sendFiles } from "./files.js";
import { printableLine } from "./text.js";

/** The types shown inline: raster images a browser decodes safely, as the daemon serves them. */
const RASTER = new Set(["image/png", "image/jpeg", "image/gif", "image/webp"]);
/** The daemon's own URL of a transfer's file, and nothing else. */
const OWN_URL = /^\/transfers\/[0-9a-f]{4,32}\/files\/\d{1,6}$/;

/** Most pixels a thumbnail is drawn from: a few kilobytes can say 50,000 × 50,000 (a decompression bomb). */
const MAX_PIXELS = 50_000_000;

/** The images of a transfer that may be shown: raster types at the daemon's own URLs, of a size a page can decode. */
export function showable(t) {
  if (!Array.isArray(t?.images)) return [];
  return t.images.filter((i) =>
    i && typeof i.url === "string" && OWN_URL.test(i.url) && RASTER.has(i.type) && typeof i.name === "string" &&
    !((i.width ?? 0) * (i.height ?? 0) > MAX_PIXELS)
  );
}

/** The offer message each list item shows. */
const messageOf = new WeakMap();

/** Transfers asked for by id (an offer further back than GET /transfers lists) and those not found. */
const asked = new Set();

/** An offer message's list item gets thumbnails of its transfer's images, if any can be shown yet. */
function addThumbnails(li, m) {
  const offer = m.files?.kind === "offer" ? m.files.offer : undefined;
  if (!offer) return;
  li.dataset.offer = offer;
  messageOf.set(li, m);
  const t = state.transfers.get(offer);
  if (t) {
    fillThumbnails(li, t);
  } else if (!asked.has(offer)) {
    // Not among the transfers the page knows: asked for once (a 404: an offer forgotten, nothing to show).
    asked.add(offer);
    api(`/transfers/${offer}`).then((got) => {
      keepTransfer(got);
      refresh(got);
    }, () => {});
  }
}

/** Every shown offer message of this transfer, with its thumbnails as the transfer now says. */
function refresh(t) {
  for (const li of $("messages").querySelectorAll("li[data-offer]")) {
    if (li.dataset.offer === t.id) fillThumbnails(li, t);
  }
}

/**
 * Whether a transfer is the one a message offers: the same peer and way. A peer's offer naming another's transfer
 * (whose id it should not know, but might) shows nothing of it.
 */
const offeredBy = (t, m) => t.peer?.id === m.peer.id && t.direction === m.direction;

function fillThumbnails(li, t) {
  const m = messageOf.get(li);
  if (!m || !offeredBy(t, m)) return;
  const images = showable(t);
  if (images.length === 0 || li.querySelector(".thumbs")) return;
  const box = el("div", "thumbs");
  for (const image of images.slice(0, 12)) {
    const b = el("button", "thumb");
    b.type = "button";
    b.title = `${printableLine(image.name)} — open full size`;
    const img = el("img");
    img.alt = printableLine(image.name);
    img.loading = "lazy";
    img.decoding = "async";
    img.src = image.url;
    img.setAttribute("elementtiming", "thumbnail");
    img.dataset.arrived = String(performance.now());
    img.addEventListener(
      "error",
      () => b.replaceWith(el("span", "thumb-missing", `${printableLine(image.name)} (not available)`)),
    );
    b.append(img);
    b.addEventListener("click", () => openFull(image));
    box.append(b);
  }
  if (images.length > 12) box.append(el("span", "thumb-more", `and ${images.length - 12} more`));
  // Thumbnails have a fixed size (no jump as they load); one added to the newest message keeps the list at its end.
  const list = $("messages");
  const atBottom = li.isConnected && list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  const meta = li.querySelector(".meta");
  if (meta) meta.before(box);
  else li.append(box);
  if (atBottom) list.scrollTop = list.scrollHeight;
}

/** The full-size dialog: the image (its size, scaled down to the window), its name, Download and Close. */
function dialog() {
  let d = $("image-dialog");
  if (d) return d;
  d = el("dialog");
  d.id = "image-dialog";
  d.setAttribute("aria-labelledby", "image-name");
  const img = el("img");
  img.id = "image-full";
  const name = el("p");
  name.id = "image-name";
  name.dir = "auto";
  const download = el("a", "", "Download");
  download.id = "image-download";
  const close = el("button", "", "Close");
  close.type = "button";
  close.addEventListener("click", () => d.close());
  const row = el("p", "image-actions");
  row.append(download, close);
  d.append(img, name, row);
  // A click on the backdrop (outside the image and its buttons) closes it too.
  d.addEventListener("click", (e) => {
    if (e.target === d) d.close();
  });
  document.body.append(d);
  return d;
}

function openFull(image) {
  const d = dialog();
  const img = $("image-full");
  img.src = image.url;
  img.alt = printableLine(image.name);
  $("image-name").textContent = `${printableLine(image.name)} (${formatSize(image.size)})`;
  $("image-download").href = image.url;
  $("image-download").download = printableLine(image.name);
  d.showModal();
  $("image-download").focus();
}

function formatSize(n) {
  if (!Number.isFinite(n)) return "size unknown";
  if (n < 1000) return `${n} B`;
  return n < 1e6 ? `${(n / 1000).toFixed(1)} kB` : `${(n / 1e6).toFixed(1)} MB`;
}

/** A pasted image's name: the browser calls a screenshot "image.png"; the receiver gets when it was pasted. */
export function pastedName(file, now = new Date()) {
  const ext = { "image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp" }[file.type];
  if (file.name && file.name !== "image.png" && file.name !== "image") return file.name;
  const pad = (n) => String(n).padStart(2, "0");
  const stamp = `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())} ${pad(now.getHours())}.${
    pad(now.getMinutes())
  }.${pad(now.getSeconds())}`;
  return `Pasted image ${stamp}.${ext ?? "png"}`;
}

hooks.messageItem.push(addThumbnails);

for (const type of ["transfer-offered", "transfer-updated", "transfer-done"]) {
  onEvent(type, (t) => {
    if (t?.id && showable(t).length > 0) refresh(t);
  });
}

// Paste an image (a screenshot, an image copied in another program) into the composer: it is sent as a file.
$("text").addEventListener("paste", (e) => {
  const files = [...(e.clipboardData?.files ?? [])];
  if (!state.current || files.length === 0) return;
  e.preventDefault();
  void sendFiles(files.map((f) => new File([f], pastedName(f), { type: f.type })));
});
