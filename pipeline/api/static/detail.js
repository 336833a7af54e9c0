// One job in full, in a modal <dialog>: it takes focus when it opens, keeps
// Tab inside, and gives focus back to what opened it on Escape or close.
// Its URL is /jobs/{id}: opening one (or reloading it) opens the job, and
// the browser's back button closes it.
//
// While it is open (and the tab is visible) the page holds one event stream
// for this job, the only stream it ever holds; if the stream cannot be had,
// the job is polled instead.
//
// Other modules add to it without touching this file: each render
// dispatches "detail-render" on the dialog ({detail: {job, attempts}}), and
// #detail-extra is theirs to fill.

import { HttpError, OfflineError, isOffline, openStream, request } from "./net.js";
import { Review } from "./review.js";
import { $, FINISHED, copyText, el, etaText, formatSeconds, progressText, stageBar, toast,
  trapFocus, waitingText } from "./ui.js";
import { logText, renderBody } from "./detail-view.js";

const JOB_PATH = /^\/jobs\/([^/]+)\/?$/;

export function jobInPath() {
  const found = JOB_PATH.exec(location.pathname);
  return found ? decodeURIComponent(found[1]) : null;
}

export class Detail {
  constructor(list, form) {
    this.list = list;
    this.form = form;
    this.dialog = $("detail");
    this.id = null;
    this.job = null;
    this.attempts = [];
    this.receivedAt = 0;
    this.closeStream = null;
    this.streaming = false;
    this.refreshing = null;
    this.lastRefresh = 0;
    this.opener = null;
    trapFocus(this.dialog);
    $("detail-close").addEventListener("click", () => this.close());
    this.dialog.addEventListener("close", () => this.closed());
    window.addEventListener("popstate", () => {
      const id = jobInPath();
      if (id) this.open(id, { history: "none" });
      else if (this.isOpen) this.close({ history: "none" });
    });
    $("act-retry").addEventListener("click", () => this.act("retry"));
    $("act-cancel").addEventListener("click", () => this.act("cancel"));
    $("act-wake").addEventListener("click", () => this.wake(this.job));
    $("act-delete").addEventListener("click", () => this.remove());
    $("act-download").addEventListener("click", () => this.download(false));
    $("act-logs").addEventListener("click", () => this.download(true));
    $("act-preview").addEventListener("click", () => this.preview());
    $("act-copy").addEventListener("click", () => this.copyLog());
    $("act-template").addEventListener("click", () => {
      if (!this.job) return;
      const job = this.job;
      this.close();
      this.form.fill(job);
    });
    this.review = new Review(this);
  }

  get isOpen() {
    return this.id !== null;
  }

  // history: "push" (a user opened it), "replace" (the page loaded at its
  // URL) or "none" (the browser moved there already).
  async open(id, { history = "push" } = {}) {
    if (this.id !== id) {
      this.pauseStream();
      this.id = id;
      this.job = null;
      $("preview-wrap").hidden = true;
    }
    if (!this.dialog.open) {
      const active = document.activeElement;
      this.opener = active && active !== document.body ? active : null;
      this.dialog.showModal();
      $("detail-name").textContent = "Loading…";
      $("detail-name").focus();
    }
    const path = `/jobs/${encodeURIComponent(id)}`;
    if (history !== "none" && location.pathname !== path) {
      if (history === "push") window.history.pushState({ job: id, pushed: true }, "", path);
      else window.history.replaceState({ job: id }, "", path);
    }
    try {
      await this.refresh();
    } catch (error) {
      if (error instanceof HttpError && error.status === 404) {
        toast(error.message, "bad");
        this.close();
        return;
      }
      if (!(error instanceof OfflineError)) throw error;
    }
    this.resumeStream();
  }

  close({ history = "auto" } = {}) {
    if (history === "auto" && jobInPath()) {
      if (window.history.state && window.history.state.pushed) {
        window.history.back(); // popstate closes it
        return;
      }
      window.history.replaceState(null, "", "/");
    }
    if (this.dialog.open) this.dialog.close(); // "close" runs closed()
    else this.closed();
  }

  // The dialog closed (Escape, the close button, back): focus goes back.
  closed() {
    const id = this.id;
    this.pauseStream();
    this.id = null;
    this.job = null;
    if (jobInPath()) { // closed by Escape or the close button: leave the job's URL
      if (window.history.state && window.history.state.pushed) window.history.back();
      else window.history.replaceState(null, "", "/");
    }
    const card = id && this.list.cards.get(id);
    const target = this.opener && this.opener.isConnected ? this.opener
      : card ? card.querySelector(".name") : null;
    this.opener = null;
    if (target) target.focus();
  }

  resumeStream() {
    if (!this.id || this.closeStream || document.hidden || isOffline()) return;
    const id = this.id;
    this.streaming = true;
    this.closeStream = openStream(`/api/events?job=${encodeURIComponent(id)}`, (view) => {
      this.list.update(view);
      if (view.id === this.id) this.refreshSoon();
    }, () => {
      // No stream through this connection (a proxy that buffers, a server
      // restart): poll instead until the view is opened again.
      this.closeStream = null;
      this.streaming = false;
    });
  }

  pauseStream() {
    if (this.closeStream) this.closeStream();
    this.closeStream = null;
    this.streaming = false;
  }

  // Several events in a burst make one refresh, at most one a second.
  refreshSoon() {
    if (this.refreshing) return;
    const wait = Math.max(0, 1000 - (Date.now() - this.lastRefresh));
    this.refreshing = setTimeout(() => {
      this.refreshing = null;
      this.refresh().catch(() => {});
    }, wait);
  }

  async refresh() {
    if (!this.id) return;
    const id = this.id;
    this.lastRefresh = Date.now();
    const [detail, logs] = await Promise.all([
      request(`/api/jobs/${encodeURIComponent(id)}`),
      request(`/api/jobs/${encodeURIComponent(id)}/logs`),
    ]);
    if (id !== this.id) return;
    this.job = detail.data;
    this.attempts = logs.data.attempts;
    this.receivedAt = Date.now();
    this.list.update(this.job);
    this.render();
  }

  render() {
    const job = this.job;
    $("detail-name").textContent = job.name;
    $("detail-state").textContent = job.state;
    $("detail-state").dataset.state = job.state;
    stageBar($("detail-bar"), job);
    this.tick();
    const error = job.error && job.error.message ? `[${job.error.class}] ${job.error.message}` : "";
    $("detail-error").textContent = error;
    $("detail-error").hidden = !error || job.state === "SUCCEEDED";
    renderBody(job, this.attempts);
    $("act-download").disabled = !job.has_output;
    $("act-preview").disabled = !job.has_output;
    $("act-retry").disabled = !["FAILED", "CANCELED", "INTERRUPTED"].includes(job.state);
    $("act-cancel").disabled = !["QUEUED", "RUNNING", "INTERRUPTED"].includes(job.state);
    $("act-delete").disabled = !FINISHED.has(job.state) && job.state !== "QUEUED";
    this.dialog.dispatchEvent(new CustomEvent("detail-render",
      { detail: { job, attempts: this.attempts } }));
    this.review.show(job);
  }

  tick() {
    const job = this.job;
    if (!job) return;
    const parts = [progressText(job)];
    const eta = etaText(job, this.receivedAt);
    if (eta) parts.push(eta);
    if (job.tokens_per_s) parts.push(`${Math.round(job.tokens_per_s)} tok/s`);
    if (job.state === "QUEUED" && job.queue_position) {
      parts.push(`#${job.queue_position} in the queue`);
    }
    if (job.note) parts.push(job.note);
    if (job.elapsed_s) parts.push(FINISHED.has(job.state) ? `took ${formatSeconds(job.elapsed_s)}`
      : `${formatSeconds(job.elapsed_s)} of work so far`);
    $("detail-progress").textContent = parts.join(" · ");
    const waiting = job.state === "RUNNING" && job.waiting;
    $("detail-wait").hidden = !waiting;
    $("detail-wait-text").textContent = waiting ? waitingText(job.waiting) : "";
  }

  async post(path, body) {
    return request(path, { method: "POST", body: body && JSON.stringify(body), json: !!body });
  }

  async act(verb) {
    if (!this.job || isOffline()) return;
    try {
      const { data } = await this.post(`/api/jobs/${encodeURIComponent(this.job.id)}/${verb}`);
      toast(verb === "retry" ? `${data.job.name}: queued again` :
        data.outcome === "requested" ? `${data.job.name}: stops within seconds` :
          `${data.job.name}: canceled`);
      this.list.update(data.job);
      await this.refresh();
    } catch (error) {
      this.failed(error);
    }
  }

  // "Retry now": a job waiting out a retry's backoff tries again at once.
  async wake(job) {
    if (!job || isOffline()) return;
    try {
      await this.post(`/api/jobs/${encodeURIComponent(job.id)}/retry-now`);
      toast(`${job.name}: retrying now`);
      if (this.id === job.id) await this.refresh();
    } catch (error) {
      this.failed(error);
    }
  }

  async remove() {
    const job = this.job;
    if (!job || isOffline()) return;
    if (!window.confirm(`Delete ${job.name} with its chunks, log and upload?`)) return;
    try {
      await request(`/api/jobs/${encodeURIComponent(job.id)}`, { method: "DELETE" });
      toast(`${job.name}: deleted`);
      this.close();
      this.list.etag = null;
    } catch (error) {
      this.failed(error);
    }
  }

  failed(error) {
    if (error instanceof HttpError) toast(error.message, "bad");
    else if (!(error instanceof OfflineError)) throw error;
  }

  // The translation (or, with log, the attempts as text) as a file.
  async download(log) {
    if (!this.job || isOffline()) return;
    const id = encodeURIComponent(this.job.id);
    try {
      const response = await request(log ? `/api/jobs/${id}/logs?format=text`
        : `/api/jobs/${id}/output`, { raw: true });
      const name = fileName(response.headers.get("Content-Disposition")) || `${this.job.id}.txt`;
      const url = URL.createObjectURL(await response.blob());
      const link = el("a", { href: url, download: name, class: "offscreen" });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (error) {
      this.failed(error);
    }
  }

  async preview() {
    if (!this.job || isOffline()) return;
    try {
      const response = await request(`/api/jobs/${encodeURIComponent(this.job.id)}/output?inline=1`,
        { raw: true });
      $("preview").textContent = await response.text();
      $("preview-wrap").hidden = false;
      $("preview-wrap").scrollIntoView({ behavior: "smooth", block: "nearest" });
    } catch (error) {
      this.failed(error);
    }
  }

  // Works offline: it needs only what the page holds.
  async copyLog() {
    if (!this.job) return;
    const text = logText(this.job, this.attempts);
    toast(await copyText(text) ? "Error log copied" : "Could not copy", "info");
  }
}

// The file name of a Content-Disposition header (the UTF-8 one if given).
function fileName(header) {
  if (!header) return null;
  const utf8 = /filename\*=UTF-8''([^;]+)/i.exec(header);
  if (utf8) return decodeURIComponent(utf8[1]);
  const plain = /filename="([^"]*)"/i.exec(header);
  return plain ? plain[1] : null;
}
