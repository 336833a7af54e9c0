// Small pieces every part of the page uses. Strings from users and
// documents (file names, error messages) only ever reach the page through
// textContent: el() has no way to set HTML.

export const STAGES = ["preprocess", "inference", "postprocess", "upload"];
export const FINISHED = new Set(["SUCCEEDED", "FAILED", "CANCELED"]);

// el("div", {class: "card", text: name, title: ..., data: {id}}, child, ...)
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "data") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

// Tab and Shift+Tab cycle inside an open modal dialog: without this a
// browser lets Tab leave the last control for its own toolbar, and the
// page's focus lands on <body> when it comes back.
const FOCUSABLE = "a[href], button, input, select, textarea, summary, [tabindex]";
export function trapFocus(dialog) {
  dialog.addEventListener("keydown", (event) => {
    if (event.key !== "Tab" || !dialog.open) return;
    const items = [...dialog.querySelectorAll(FOCUSABLE)].filter((node) =>
      !node.disabled && node.tabIndex >= 0 && node.getClientRects().length > 0 &&
      !node.closest("[hidden]") && !node.closest("details:not([open]) > :not(summary)"));
    if (!items.length) return;
    const first = items[0], last = items[items.length - 1];
    if (event.shiftKey && (document.activeElement === first || !dialog.contains(document.activeElement))) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && document.activeElement === last) {
      event.preventDefault();
      first.focus();
    }
  });
}

export function $(id) {
  return document.getElementById(id);
}

// The server's clock minus ours, in seconds: waits end at server times.
let clockOffset = 0;
export function syncClock(serverNow) {
  clockOffset = serverNow - Date.now() / 1000;
}
export function serverNow() {
  return Date.now() / 1000 + clockOffset;
}

export function formatSeconds(seconds) {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), rest = s % 60;
  if (h) return `${h}h${String(m).padStart(2, "0")}m`;
  if (m) return `${m}m${String(rest).padStart(2, "0")}s`;
  return `${rest}s`;
}

export function formatTime(unix) {
  if (!unix) return "";
  return new Date(unix * 1000).toLocaleString();
}

// "retrying batch 12 in 3 s (at 14:02:07), OOM, attempt 2/3"
export function waitingText(waiting) {
  const left = Math.max(0, Math.ceil(waiting.until - serverNow()));
  const at = new Date((waiting.until - clockOffset) * 1000).toLocaleTimeString();
  return `retrying ${waiting.what} in ${left} s (at ${at}), ${waiting.error_class}, ` +
    `attempt ${waiting.attempt}/${waiting.limit}`;
}

// The ETA shown for a job seen at receivedAt (ms): counts down by itself.
export function etaText(job, receivedAt) {
  if (job.state !== "RUNNING") return "";
  if (job.waiting) return "ETA paused";
  if (job.eta_seconds === null || job.eta_seconds === undefined) return "ETA unknown";
  const left = job.eta_seconds - (Date.now() - receivedAt) / 1000;
  return left >= 0.5 ? `ETA ${formatSeconds(left)}` : "ETA any moment";
}

// Four segments, each as wide as its stage's measured weight, each filled
// as far as that stage has got; to assistive technology one progress bar
// with the job's percent and where it is.
export function stageBar(bar, job) {
  bar.setAttribute("role", "progressbar");
  bar.setAttribute("aria-valuemin", "0");
  bar.setAttribute("aria-valuemax", "100");
  bar.setAttribute("aria-valuenow", String(job.percent));
  bar.setAttribute("aria-valuetext", progressText(job));
  if (bar.childElementCount !== STAGES.length) {
    bar.replaceChildren(...STAGES.map((stage) =>
      el("div", { class: `seg seg-${stage}` }, el("div", { class: "fill" }))));
  }
  STAGES.forEach((stage, i) => {
    const seg = bar.children[i];
    const weight = (job.weights && job.weights[stage]) || 0;
    const done = (job.stage_percent && job.stage_percent[stage]) || 0;
    seg.style.flexGrow = String(Math.max(weight, 0.001));
    seg.firstChild.style.width = `${done}%`;
    seg.classList.toggle("current", job.stage === stage && !FINISHED.has(job.state));
    seg.title = `${stage}: ${Math.round(weight * 100)}% of the job, ${Math.round(done)}% done`;
  });
  bar.dataset.state = job.state;
}

// "42.5%, inference 1,200 of 9,433 tokens": what the bar shows, in words.
export function progressText(job) {
  const parts = [`${job.percent.toFixed(1)}%`];
  if (!FINISHED.has(job.state)) {
    const units = job.stage_units;
    parts.push(units && units.total ? `${job.stage} ${units.done.toLocaleString()} of ` +
      `${units.total.toLocaleString()} ${units.unit}` : `stage ${job.stage}`);
  } else {
    parts.push(job.state.toLowerCase());
  }
  return parts.join(", ");
}

// A message at the bottom of the page, or of the open dialog (what is
// outside a modal dialog is inert: it would be neither seen nor read).
export function toast(text, kind = "info") {
  const box = el("div", { class: `toast toast-${kind}`, text });
  const dialog = document.querySelector("dialog[open]");
  let host = $("toasts");
  if (dialog) {
    host = dialog.querySelector(".toasts");
    if (!host) {
      host = el("div", { class: "toasts", "aria-live": "polite" });
      dialog.append(host);
    }
  }
  host.append(box);
  setTimeout(() => box.remove(), 6000);
}

// A job that finished or failed since the page last looked (it watched it
// run, or it finished after the page's previous poll): a desktop
// notification when allowed, a toast always, a count in the tab's title
// while it is hidden.
let unseen = 0;
export function announce(job) {
  const text = `${job.name}: ${job.state === "SUCCEEDED" ? "translated" : job.state.toLowerCase()}`;
  toast(text, job.state === "SUCCEEDED" ? "good" : "bad");
  if (document.hidden) {
    unseen += 1;
    document.title = `(${unseen}) nllb-pipeline`;
  }
  if ("Notification" in window && Notification.permission === "granted") {
    try {
      new Notification("nllb-pipeline", { body: text, tag: job.id });
    } catch (_) { /* some browsers only notify from a service worker */ }
  }
}

export function seen() {
  unseen = 0;
  document.title = "nllb-pipeline";
}

export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch (_) {
    const area = el("textarea", { class: "offscreen" });
    area.value = text;
    document.body.append(area);
    area.select();
    const ok = document.execCommand("copy");
    area.remove();
    return ok;
  }
}
