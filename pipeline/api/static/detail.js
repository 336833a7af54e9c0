// One job in full: stage timings, chunk counts, failed chunks, the attempt
// log, and what can be done with it. While it is open (and the tab is
// visible) the page holds one event stream for this job, the only stream it
// ever holds; if the stream cannot be had, the job is polled instead.

import { HttpError, OfflineError, isOffline, openStream, request } from "./net.js";
import { Review } from "./review.js";
import { $, FINISHED, STAGES, copyText, el, etaText, formatSeconds, formatTime, stageBar,
  toast, waitingText } from "./ui.js";

export class Detail {
  constructor(list, form) {
    this.list = list;
    this.form = form;
    this.id = null;
    this.job = null;
    this.attempts = [];
    this.receivedAt = 0;
    this.closeStream = null;
    this.streaming = false;
    this.refreshing = null;
    this.lastRefresh = 0;
    $("detail-close").addEventListener("click", () => this.close());
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && this.id) this.close();
    });
    $("act-retry").addEventListener("click", () => this.act("retry"));
    $("act-cancel").addEventListener("click", () => this.act("cancel"));
    $("act-download").addEventListener("click", () => this.download());
    $("act-preview").addEventListener("click", () => this.preview());
    $("act-copy").addEventListener("click", () => this.copyLog());
    $("act-template").addEventListener("click", () => this.job && this.form.fill(this.job));
    this.review = new Review(this);
  }

  get isOpen() {
    return this.id !== null;
  }

  async open(id) {
    if (this.id !== id) {
      this.close();
      this.id = id;
      $("preview-wrap").hidden = true;
    }
    $("detail").hidden = false;
    await this.refresh();
    this.resumeStream();
  }

  close() {
    this.pauseStream();
    this.id = null;
    this.job = null;
    $("detail").hidden = true;
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
    const p = job.params;
    $("detail-meta").textContent = `${job.src} → ${job.tgt} · ${job.format} · beams ${p.beams}` +
      ` · ${p.model} · job ${job.id} · created ${formatTime(job.created_at)}` +
      (job.finished_at ? ` · finished ${formatTime(job.finished_at)}` : "");
    stageBar($("detail-bar"), job);
    this.tick();
    const error = job.error && job.error.message ? `[${job.error.class}] ${job.error.message}` : "";
    $("detail-error").textContent = error;
    $("detail-error").hidden = !error || job.state === "SUCCEEDED";

    const runs = new Map();
    for (const run of job.stages) {
      const seen = runs.get(run.stage) || { wall: 0, done: 0, total: 0, n: 0 };
      seen.wall += run.wall_s || 0;
      seen.done = run.units_done;
      seen.total = run.units_total;
      seen.n += 1;
      runs.set(run.stage, seen);
    }
    $("detail-stages").tBodies[0].replaceChildren(...STAGES.map((stage) => {
      const run = runs.get(stage);
      return el("tr", { class: job.stage === stage ? "current" : "" },
        el("td", { text: stage }),
        el("td", { text: share(job.weights[stage] || 0) }),
        el("td", { text: `${Math.round(job.stage_percent[stage] || 0)}%` }),
        el("td", { text: run ? `${run.wall.toFixed(2)} s` + (run.n > 1 ? ` (${run.n} runs)` : "") : "–" }),
        el("td", { text: run && run.total !== null ? `${run.done ?? 0} / ${run.total}` : "–" }));
    }));

    const c = job.chunks;
    $("detail-chunks").textContent = `${c.done || 0} done, ${c.failed || 0} failed, ` +
      `${c.pending || 0} pending`;
    $("detail-failed-wrap").hidden = job.failed_chunks.length === 0;
    $("detail-failed").replaceChildren(...job.failed_chunks.map((chunk) => el("li", {},
      el("strong", { text: `chunk ${chunk.chunk}` }),
      el("span", { class: "muted", text: ` · ${chunk.attempts} attempt(s) · ` }),
      el("span", { class: "error", text: chunk.last_error || "" }),
      el("div", { class: "source", text: chunk.source }))));

    $("detail-no-attempts").hidden = this.attempts.length > 0;
    $("detail-attempts").hidden = this.attempts.length === 0;
    $("detail-attempts").tBodies[0].replaceChildren(...this.attempts.map((a) => el("tr", {},
      el("td", { text: new Date(a.at * 1000).toLocaleTimeString() }),
      el("td", {}, el("code", { text: a.trace_id })),
      el("td", { text: where(a) }),
      el("td", { text: a.error_class }),
      el("td", { text: String(a.attempt) }),
      el("td", { text: a.decision + (a.delay_s ? ` (${a.delay_s.toFixed(1)} s)` : "") }),
      el("td", { class: "message", text: a.message }))));

    const d = job.delivery;
    $("detail-delivery").textContent = d ? `${d.target} · ${d.bytes} bytes · sha256 ` +
      `${(d.sha256 || "").slice(0, 16)}…` + (d.status ? ` · HTTP ${d.status}` : "") : "not delivered yet";

    const hasOutput = job.state === "SUCCEEDED" || (job.state === "FAILED" && job.stage === "done");
    $("act-download").disabled = !hasOutput;
    $("act-preview").disabled = !hasOutput;
    $("act-retry").disabled = !["FAILED", "CANCELED", "INTERRUPTED"].includes(job.state);
    $("act-cancel").disabled = !["QUEUED", "RUNNING", "INTERRUPTED"].includes(job.state);
    this.review.show(job);
  }

  tick() {
    const job = this.job;
    if (!job) return;
    const parts = [`${job.percent.toFixed(1)}%`];
    if (!FINISHED.has(job.state)) parts.push(`stage ${job.stage}`);
    const eta = etaText(job, this.receivedAt);
    if (eta) parts.push(eta);
    if (job.tokens_per_s) parts.push(`${Math.round(job.tokens_per_s)} tok/s`);
    if (job.state === "RUNNING" && job.waiting) parts.push(waitingText(job.waiting));
    if (job.note) parts.push(job.note);
    const wall = job.stages.reduce((sum, run) => sum + (run.wall_s || 0), 0);
    if (wall) parts.push(FINISHED.has(job.state) ? `took ${formatSeconds(wall)}` :
      `${formatSeconds(wall)} of work so far`);
    $("detail-progress").textContent = parts.join(" · ");
  }

  async act(verb) {
    if (!this.job || isOffline()) return;
    try {
      const { data } = await request(`/api/jobs/${encodeURIComponent(this.job.id)}/${verb}`,
        { method: "POST" });
      toast(verb === "retry" ? `${data.job.name}: queued again` :
        data.outcome === "requested" ? `${data.job.name}: stops within seconds` :
          `${data.job.name}: canceled`);
      this.list.update(data.job);
      await this.refresh();
    } catch (error) {
      if (error instanceof HttpError) toast(error.message, "bad");
      else if (!(error instanceof OfflineError)) throw error;
    }
  }

  async output(inline) {
    const path = `/api/jobs/${encodeURIComponent(this.job.id)}/output` + (inline ? "?inline=1" : "");
    return request(path, { raw: true });
  }

  async download() {
    if (!this.job || isOffline()) return;
    try {
      const response = await this.output(false);
      const name = fileName(response.headers.get("Content-Disposition")) || `${this.job.id}.txt`;
      const url = URL.createObjectURL(await response.blob());
      const link = el("a", { href: url, download: name, class: "offscreen" });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (error) {
      if (error instanceof HttpError) toast(error.message, "bad");
    }
  }

  async preview() {
    if (!this.job || isOffline()) return;
    try {
      const response = await this.output(true);
      $("preview").textContent = await response.text();
      $("preview-wrap").hidden = false;
      $("preview-wrap").scrollIntoView({ behavior: "smooth", block: "nearest" });
    } catch (error) {
      if (error instanceof HttpError) toast(error.message, "bad");
    }
  }

  async copyLog() {
    if (!this.job) return;
    const job = this.job;
    const lines = [`job ${job.id} ${job.name} ${job.state} (stage ${job.stage}, ${job.percent}%)`];
    if (job.error && job.error.message) lines.push(`error: [${job.error.class}] ${job.error.message}`);
    for (const a of this.attempts) {
      lines.push(`${new Date(a.at * 1000).toISOString()} [${a.trace_id}] ${where(a)}: ` +
        `${a.error_class} attempt ${a.attempt} -> ${a.decision}` +
        (a.delay_s ? ` after ${a.delay_s.toFixed(1)} s` : "") + `: ${a.message}`);
    }
    for (const chunk of job.failed_chunks) {
      lines.push(`failed chunk ${chunk.chunk} (${chunk.attempts} attempts): ${chunk.last_error}`);
    }
    toast(await copyText(lines.join("\n")) ? "Error log copied" : "Could not copy", "info");
  }
}

// A stage's share of the job: "70%", or "0.4%" for the small ones.
function share(weight) {
  const pct = weight * 100;
  return pct > 0 && pct < 10 ? `${pct.toFixed(1)}%` : `${Math.round(pct)}%`;
}

// "inference batch 12.1 chunk 40": the batch named as the live log names it.
function where(attempt) {
  const batch = attempt.batch || attempt.batch_id;
  return attempt.stage + (batch !== null && batch !== undefined ? ` batch ${batch}` : "") +
    (attempt.chunk_idx !== null ? ` chunk ${attempt.chunk_idx}` : "");
}

// The file name of a Content-Disposition header (the UTF-8 one if given).
function fileName(header) {
  if (!header) return null;
  const utf8 = /filename\*=UTF-8''([^;]+)/i.exec(header);
  if (utf8) return decodeURIComponent(utf8[1]);
  const plain = /filename="([^"]*)"/i.exec(header);
  return plain ? plain[1] : null;
}
