// The review loop in a job's detail (issue 23): its chunks, source beside
// translation, flagged ones first, a page at a time; a reader marks one
// wrong and types a correction. The server keeps the correction in the
// translation memory as a human translation and queues the job to deliver
// its output again (GET/POST /api/jobs/{id}/chunks...). Rows are keyed by
// chunk number and updated in place, so an open correction survives a
// refresh of the rest. Every string from the document goes in as text.

import { HttpError, OfflineError, isOffline, request } from "./net.js";
import { $, el, toast } from "./ui.js";

const PAGE = 25;

export class Review {
  // detail: the Detail panel (its job, and refresh() after a correction).
  constructor(detail) {
    this.detail = detail;
    this.jobId = null;
    this.rows = new Map(); // chunk number -> {row, chunk}
    this.offset = 0;
    this.total = 0;
    this.build();
  }

  build() {
    document.head.append(el("link", { rel: "stylesheet", href: "/static/review.css" }));
    this.toggle = el("button", { id: "review-toggle", type: "button", "aria-expanded": "false",
      "aria-controls": "review-body", text: "Review translation",
      onclick: () => (this.body.hidden ? this.openList() : this.closeList()) });
    this.summary = el("p", { id: "review-summary", class: "muted", role: "status" });
    this.list = el("ol", { id: "review-list", class: "review-list" });
    this.more = el("button", { id: "review-more", type: "button", text: "Show more",
      onclick: () => this.load(false) });
    this.body = el("div", { id: "review-body" }, this.summary, this.list, this.more);
    this.body.hidden = true;
    this.section = el("div", { id: "review-wrap", class: "review" },
      el("h3", { text: "Review" }), this.toggle, this.body);
    this.section.hidden = true;
    const delivery = $("detail-delivery");
    delivery.parentNode.insertBefore(this.section, delivery.previousElementSibling);
  }

  // Called whenever the detail renders its job.
  show(job) {
    if (job.id !== this.jobId) this.reset(job.id);
    const reviewable = job.state === "SUCCEEDED";
    this.section.hidden = !(reviewable || !this.body.hidden);
    for (const { row } of this.rows.values()) {
      for (const button of row.querySelectorAll("button.mark")) button.disabled = !reviewable;
    }
  }

  reset(jobId) {
    this.jobId = jobId;
    this.rows.clear();
    this.list.replaceChildren();
    this.offset = 0;
    this.closeList();
  }

  async openList() {
    this.body.hidden = false;
    this.toggle.setAttribute("aria-expanded", "true");
    this.toggle.textContent = "Hide review";
    await this.load(true);
  }

  closeList() {
    this.body.hidden = true;
    this.toggle.setAttribute("aria-expanded", "false");
    this.toggle.textContent = "Review translation";
  }

  async load(fromStart) {
    if (!this.jobId || isOffline()) return;
    const id = this.jobId;
    const offset = fromStart ? 0 : this.offset;
    const limit = fromStart ? Math.max(PAGE, this.offset) : PAGE;
    try {
      const { data } = await request(`/api/jobs/${encodeURIComponent(id)}/chunks` +
        `?offset=${offset}&limit=${Math.min(limit, 200)}`);
      if (id !== this.jobId) return;
      this.total = data.total;
      this.offset = offset + data.chunks.length;
      for (const chunk of data.chunks) this.put(chunk);
      this.summary.textContent = `${data.total} chunks, ${data.flagged} flagged by the quality ` +
        `checks (listed first); ${this.rows.size} shown.`;
      this.more.hidden = this.offset >= data.total;
    } catch (error) {
      if (error instanceof HttpError) toast(error.message, "bad");
      else if (!(error instanceof OfflineError)) throw error;
    }
  }

  // Add a row for the chunk, or update the one there is.
  put(chunk) {
    let entry = this.rows.get(chunk.idx);
    if (!entry) {
      const row = el("li", { class: "review-row", data: { idx: String(chunk.idx) } });
      entry = { row, chunk };
      this.rows.set(chunk.idx, entry);
      this.list.append(row);
    }
    entry.chunk = chunk;
    if (entry.row.querySelector("form")) return; // a correction being typed stays as it is
    this.render(entry);
  }

  render(entry) {
    const { row, chunk } = entry;
    const badges = [];
    if (chunk.flag) badges.push(el("span", { class: "badge flag", text: `flag: ${chunk.flag}` }));
    if (chunk.reused) badges.push(el("span", { class: "badge", text: `from the ${chunk.reused}` }));
    if (chunk.review) {
      badges.push(el("span", { class: "badge reviewed",
        text: chunk.review.correction ? "corrected" : "marked wrong" }));
    }
    row.replaceChildren(
      el("div", { class: "review-head" }, el("strong", { text: `chunk ${chunk.idx}` }), ...badges),
      el("div", { class: "pair" },
        el("p", { class: "source", text: chunk.source }),
        el("p", { class: "translation", text: chunk.translation ?? "" })),
      el("button", { type: "button", class: "mark", text: "Mark wrong…",
        "aria-label": `mark chunk ${chunk.idx} wrong`, onclick: () => this.edit(entry) }));
  }

  edit(entry) {
    const { row, chunk } = entry;
    const inputId = `correction-${chunk.idx}`;
    const input = el("input", { id: inputId, type: "text", autocomplete: "off",
      "aria-describedby": `${inputId}-hint` });
    input.value = chunk.translation ?? "";
    const form = el("form", { class: "correction" },
      el("label", { for: inputId, text: `Correct translation of chunk ${chunk.idx}` }),
      input,
      el("p", { id: `${inputId}-hint`, class: "muted hint",
        text: "Keep [1], [2]… as they are: they stand for links and markup." }),
      el("div", { class: "buttons" },
        el("button", { type: "submit", class: "primary", text: "Save correction" }),
        el("button", { type: "button", class: "wrong-only", text: "Mark wrong, no correction",
          onclick: () => this.send(entry, null) }),
        el("button", { type: "button", class: "quiet", text: "Cancel",
          onclick: () => { this.render(entry); row.querySelector("button.mark").focus(); } })));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.send(entry, input.value);
    });
    form.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        // closes the correction, not the panel: the modal dialog closes on
        // Escape as its default action, so prevent it as well as stop it
        event.preventDefault();
        event.stopPropagation();
        this.render(entry);
        row.querySelector("button.mark").focus();
      }
    });
    row.querySelector("button.mark").replaceWith(form);
    input.focus();
    input.select();
  }

  async send(entry, correction) {
    if (isOffline()) return;
    const id = this.jobId;
    const body = correction === null ? {} : { correction };
    try {
      const { data } = await request(
        `/api/jobs/${encodeURIComponent(id)}/chunks/${entry.chunk.idx}/review`,
        { method: "POST", body: JSON.stringify(body) });
      if (id !== this.jobId) return;
      entry.chunk = data.chunk;
      this.render(entry);
      toast(data.redelivery ? `Chunk ${data.chunk.idx} corrected; the output is being ` +
        "delivered again" : `Chunk ${data.chunk.idx} marked wrong`);
      entry.row.querySelector("button.mark").focus();
      await this.detail.refresh();
    } catch (error) {
      if (error instanceof HttpError) toast(error.message, "bad");
      else if (!(error instanceof OfflineError)) throw error;
    }
  }
}
