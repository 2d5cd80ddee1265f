// The page's Settings dialog: accept images automatically (up to a size, from peers whose key you verified), which
// the daemon keeps (`GET /settings`, `PUT /settings {autoAcceptImages: {enabled, maxBytes}}`).
import { $, api, el } from "./core.js";

const MB = 1_000_000;
/** What the size field offers when the daemon has no size yet: 10 MB. */
const DEFAULT_MB = 10;

function build() {
  const d = el("dialog");
  d.id = "settings-dialog";
  d.setAttribute("aria-labelledby", "settings-title");
  const form = el("form");
  form.id = "settings-form";
  const title = el("h3", "", "Settings");
  title.id = "settings-title";
  const box = el("input");
  box.type = "checkbox";
  box.id = "auto-accept";
  const boxLabel = el("label");
  boxLabel.append(box, document.createTextNode(" Accept images automatically from people whose key you verified"));
  const size = el("input");
  size.type = "number";
  size.id = "auto-accept-mb";
  size.min = "0.1";
  size.step = "any";
  size.required = true;
  const sizeLabel = el("label");
  sizeLabel.append(document.createTextNode("up to "), size, document.createTextNode(" MB each"));
  const help = el(
    "p",
    "settings-help",
    "PNG, JPEG, GIF and WebP only, in one offer of images alone; anything else still waits for Accept.",
  );
  const error = el("p", "settings-error");
  error.id = "settings-error";
  error.setAttribute("role", "alert");
  const save = el("button", "", "Save");
  save.type = "submit";
  const cancel = el("button", "", "Cancel");
  cancel.type = "button";
  cancel.addEventListener("click", () => d.close());
  const p1 = el("p");
  p1.append(boxLabel);
  const p2 = el("p");
  p2.append(sizeLabel);
  form.append(title, p1, p2, help, error, cancel, save);
  d.append(form);
  document.body.append(d);
  box.addEventListener("change", () => size.disabled = !box.checked);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const maxBytes = Math.round(Number(size.value) * MB);
    try {
      await api("/settings", { autoAcceptImages: { enabled: box.checked, maxBytes } }, "PUT");
      d.close();
    } catch (err) {
      error.textContent = `Not saved: ${err.message}`;
    }
  });
  return d;
}

async function openSettings() {
  const d = $("settings-dialog") ?? build();
  $("settings-error").textContent = "";
  try {
    const s = await api("/settings");
    const a = s.autoAcceptImages ?? {};
    $("auto-accept").checked = Boolean(a.enabled);
    $("auto-accept-mb").value = String(a.maxBytes > 0 ? Math.round(a.maxBytes / MB * 10) / 10 : DEFAULT_MB);
    $("auto-accept-mb").disabled = !a.enabled;
  } catch (e) {
    $("settings-error").textContent = `Settings not read: ${e.message}`;
  }
  d.showModal();
  $("auto-accept").focus();
}

const button = el("button", "", "Settings");
button.id = "settings-button";
button.type = "button";
button.title = "Settings of this node (kept by the daemon)";
button.addEventListener("click", () => void openSettings());
$("status-button").before(button);
