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

import { Detail } from "./detail.js";
import { SubmitForm } from "./form.js";
import { JobList } from "./jobs.js";
import { OfflineError, isOffline, onOfflineChange, request, setOffline, setTokenPrompt } from "./net.js";
import { $, seen, toast } from "./ui.js";

const VISIBLE_MS = 2000;
const HIDDEN_MS = 15000;
const PROBE_MAX_MS = 30000;

let list, detail;
let timer = null;
let inFlight = false;
let probeMs = 0;

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
      probeMs = Math.min(PROBE_MAX_MS, probeMs ? probeMs * 2 : 2000);
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

function askToken(refused) {
  return new Promise((resolve) => {
    const dialog = $("token-dialog"), input = $("token-input");
    $("token-error").hidden = !refused;
    dialog.hidden = false;
    input.value = "";
    input.focus();
    const done = () => {
      if (!input.value.trim()) return;
      dialog.hidden = true;
      $("token-ok").removeEventListener("click", done);
      input.removeEventListener("keydown", onKey);
      resolve(input.value.trim());
    };
    const onKey = (event) => { if (event.key === "Enter") done(); };
    $("token-ok").addEventListener("click", done);
    input.addEventListener("keydown", onKey);
  });
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
  setTokenPrompt(askToken);
  onOfflineChange((offline) => {
    $("offline").hidden = !offline;
    document.body.classList.toggle("offline", offline);
    for (const button of document.querySelectorAll(".buttons button, #submit-button")) {
      button.toggleAttribute("data-paused", offline);
    }
    if (offline) detail && detail.pauseStream();
    showLive();
  });
  window.addEventListener("offline", () => { setOffline(true); clearTimeout(timer); });
  window.addEventListener("online", () => tick()); // a hint: try now
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
  list = new JobList(names, (id) => detail.open(id).then(showLive));
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
  }, 1000);
  await tick();
  showLive();
}

main();
