// The task centre: wires the form, the list and the detail view to the
// server, and decides when to ask it for news.
//
// - The list is polled with its ETag: every 2 s while the tab is shown,
//   every 15 s while it is hidden, at once when it is shown again.
// - An open detail view holds one event stream (closed while the tab is
//   hidden); without one it is polled with the list.
// - Offline (a failed request, or navigator.onLine === false): a banner,
//   no requests, no actions. The "online" event and a slow probe (when the
//   browser thinks it is online but the server is not reachable) bring the
//   page back by itself.

import { Detail, jobInPath } from "./detail.js";
import { SubmitForm } from "./form.js";
import { JobList } from "./jobs.js";
import { HttpError, OfflineError, isOffline, onOfflineChange, request, setOffline,
  setTokenPrompt } from "./net.js";
import { $, seen, toast, trapFocus } from "./ui.js";

const VISIBLE_MS = 2000;
const HIDDEN_MS = 15000;
const PROBE_MAX_MS = 8000; // a restarted server is found within seconds
const BULK = { retry: "queued again", cancel: "canceled or stopping" };

let list, detail;
let timer = null;
let inFlight = false;
let probeMs = 0;
let probeAt = 0;

function schedule(ms) {
  clearTimeout(timer);
  timer = setTimeout(tick, ms);
}

async function tick() {
  clearTimeout(timer);
  if (navigator.onLine === false) {
    setOffline(true);
    return; // nothing until the "online" event
  }
  if (inFlight) return;
  inFlight = true;
  try {
    await list.poll();
    if (detail.isOpen && !detail.streaming) await detail.refresh();
    detail.resumeStream();
    probeMs = 0;
    schedule(document.hidden ? HIDDEN_MS : VISIBLE_MS);
  } catch (error) {
    if (error instanceof OfflineError) {
      probeMs = Math.min(PROBE_MAX_MS, probeMs ? probeMs * 2 : 1000);
      probeAt = Date.now() + probeMs;
      schedule(probeMs);
    } else {
      toast(error.message, "bad");
      schedule(document.hidden ? HIDDEN_MS : VISIBLE_MS);
    }
  } finally {
    inFlight = false;
  }
}

function showLive() {
  const live = $("live");
  if (isOffline()) live.textContent = "offline";
  else if (detail && detail.streaming) live.textContent = "live (events)";
  else live.textContent = document.hidden ? "polling slowly (tab hidden)" : "live (polling)";
}

// The token prompt is a modal dialog: focus stays in it until a token is
// given (Escape does not close it: nothing works without one).
function askToken(refused) {
  return new Promise((resolve) => {
    const dialog = $("token-dialog"), input = $("token-input");
    $("token-error").hidden = !refused;
    input.value = "";
    const opener = document.activeElement;
    if (!dialog.open) dialog.showModal();
    input.focus();
    const noEscape = (event) => event.preventDefault();
    const done = () => {
      if (!input.value.trim()) return input.focus();
      dialog.close();
      dialog.removeEventListener("cancel", noEscape);
      $("token-ok").removeEventListener("click", done);
      input.removeEventListener("keydown", onKey);
      if (opener && opener.isConnected && opener !== document.body) opener.focus();
      resolve(input.value.trim());
    };
    const onKey = (event) => { if (event.key === "Enter") done(); };
    dialog.addEventListener("cancel", noEscape);
    $("token-ok").addEventListener("click", done);
    input.addEventListener("keydown", onKey);
  });
}

// Retry or cancel every selected job in one request.
async function bulk(verb) {
  const jobs = list.selection();
  if (!jobs.length || isOffline()) return;
  try {
    const { data } = await request(`/api/jobs/${verb}`, { method: "POST", json: true,
      body: JSON.stringify({ ids: jobs.map((job) => job.id) }) });
    const done = data.results.filter((r) => r.ok).length;
    const refused = data.results.filter((r) => !r.ok);
    toast(`${done} job(s) ${BULK[verb]}` + (refused.length ? `; ${refused.length} not: ` +
      refused.slice(0, 3).map((r) => r.error.message).join("; ") : ""),
    refused.length ? "bad" : "good");
    list.clearSelection();
    list.etag = null;
    tick();
  } catch (error) {
    if (error instanceof HttpError) toast(error.message, "bad");
    else if (!(error instanceof OfflineError)) throw error;
  }
}

function showSelection(jobs) {
  $("bulk-count").textContent = jobs.length ? `${jobs.length} selected` : "";
  for (const id of ["bulk-retry", "bulk-cancel", "bulk-clear"]) $(id).disabled = !jobs.length;
}

function setUpNotifications() {
  const button = $("notify");
  const show = () => {
    if (!("Notification" in window) || !window.isSecureContext) {
      button.textContent = "Notifications unavailable here: finished jobs show in the page";
      button.disabled = true;
    } else if (Notification.permission === "granted") {
      button.textContent = "Notifications on";
      button.disabled = true;
    } else if (Notification.permission === "denied") {
      button.textContent = "Notifications blocked: finished jobs show in the page";
      button.disabled = true;
    }
  };
  button.addEventListener("click", async () => {
    await Notification.requestPermission(); // asked on this click, never on load
    show();
  });
  show();
}

async function main() {
  trapFocus($("token-dialog"));
  setTokenPrompt(askToken);
  onOfflineChange((offline) => {
    $("offline").hidden = !offline;
    document.body.classList.toggle("offline", offline);
    for (const button of document.querySelectorAll("[data-needs-server], #submit-button")) {
      button.toggleAttribute("data-paused", offline);
      // unavailable, and said so, but still focusable: focus is not lost to <body>
      if (offline) button.setAttribute("aria-disabled", "true");
      else button.removeAttribute("aria-disabled");
    }
    if (offline) detail && detail.pauseStream();
    showLive();
  });
  window.addEventListener("offline", () => { setOffline(true); clearTimeout(timer); });
  window.addEventListener("online", () => tick()); // a hint: try now
  $("offline-retry").addEventListener("click", () => { probeMs = 0; tick(); });
  setUpNotifications();

  let info;
  for (;;) {
    try {
      info = (await request("/api/info")).data;
      break;
    } catch (error) {
      if (!(error instanceof OfflineError)) throw error;
      await new Promise((resolve) => setTimeout(resolve, 3000));
    }
  }
  const names = Object.fromEntries(info.languages.map((l) => [l.code, l.name]));
  list = new JobList(names, {
    onOpen: (id) => detail.open(id).then(showLive),
    onWake: (job) => detail.wake(job),
    onSelection: showSelection,
  });
  $("bulk-retry").addEventListener("click", () => bulk("retry"));
  $("bulk-cancel").addEventListener("click", () => bulk("cancel"));
  $("bulk-clear").addEventListener("click", () => list.clearSelection());
  $("bulk-all").addEventListener("click", () => list.selectAll());
  const form = new SubmitForm(info, (job) => { list.update(job); tick(); });
  detail = new Detail(list, form);
  if (info.workers) {
    $("workers").textContent = `${info.workers.running.length} of ${info.workers.wanted} worker(s)`;
  }

  document.addEventListener("visibilitychange", () => {
    if (document.hidden) {
      detail.pauseStream();
      schedule(HIDDEN_MS);
    } else {
      seen();
      tick(); // catch up at once
    }
    showLive();
  });
  window.addEventListener("focus", seen);
  setInterval(() => {
    list.tickAll();
    detail.tick();
    showLive();
    const left = Math.ceil((probeAt - Date.now()) / 1000);
    $("offline-next").textContent = isOffline() && left > 0 ? ` (next try in ${left} s)` : "";
  }, 1000);
  const opened = jobInPath();
  if (opened) detail.open(opened, { history: "replace" }).then(showLive);
  await tick();
  showLive();
}

main();
