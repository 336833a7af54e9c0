// The list of jobs: one card per job, newest first, the most recently
// finished pinned on top, filtered by state. Fed by polling GET /api/jobs
// with its ETag (a 304 costs almost nothing) and by the event stream of an
// open detail view.

import { request } from "./net.js";
import { $, FINISHED, announce, el, etaText, stageBar, syncClock, waitingText } from "./ui.js";

const FILTERS = ["ALL", "QUEUED", "RUNNING", "INTERRUPTED", "SUCCEEDED", "FAILED", "CANCELED"];
const LIMIT = 200;

export class JobList {
  constructor(languageNames, onOpen) {
    this.names = languageNames;
    this.onOpen = onOpen;
    this.jobs = new Map(); // id -> {job, at: when we received it (ms)}
    this.cards = new Map(); // id -> card element
    this.filter = "ALL";
    this.etag = null;
    this.counts = {};
    this.loaded = false;
    this.renderFilters();
  }

  renderFilters() {
    $("filters").replaceChildren(...FILTERS.map((state) => el("button", {
      type: "button", class: state === this.filter ? "chip on" : "chip", data: { state },
      "aria-pressed": String(state === this.filter),
      text: state === "ALL" ? "All" : `${state[0]}${state.slice(1).toLowerCase()}` +
        (this.counts[state] ? ` ${this.counts[state]}` : ""),
      onclick: () => this.setFilter(state),
    })));
  }

  setFilter(state) {
    this.filter = state;
    this.etag = null;
    this.renderFilters();
    this.poll();
  }

  async poll() {
    const query = `?limit=${LIMIT}` + (this.filter === "ALL" ? "" : `&state=${this.filter}`);
    const answer = await request(`/api/jobs${query}`, { etag: this.etag });
    if (answer.status === 304) return false;
    this.etag = answer.etag;
    syncClock(answer.data.now);
    this.counts = answer.data.counts;
    const at = Date.now();
    const present = new Set();
    for (const job of answer.data.jobs) {
      present.add(job.id);
      this.remember(job, at);
    }
    for (const id of [...this.jobs.keys()]) {
      if (!present.has(id)) this.jobs.delete(id);
    }
    this.loaded = true;
    this.renderFilters();
    this.render();
    return true;
  }

  // A job as the server sent it (list or event); announces what finished
  // since we last saw it.
  remember(job, at = Date.now()) {
    const before = this.jobs.get(job.id);
    if (this.loaded && before && !FINISHED.has(before.job.state) &&
        (job.state === "SUCCEEDED" || job.state === "FAILED")) {
      announce(job);
    }
    if (this.filter !== "ALL" && job.state !== this.filter && !before) return;
    this.jobs.set(job.id, { job, at });
  }

  update(job) {
    this.remember(job);
    this.render();
  }

  ordered() {
    const all = [...this.jobs.values()].map((entry) => entry.job);
    all.sort((a, b) => b.created_at - a.created_at);
    let pinned = null;
    for (const job of all) {
      if (FINISHED.has(job.state) && job.finished_at &&
          (!pinned || job.finished_at > pinned.finished_at)) pinned = job;
    }
    return { pinned, rest: all.filter((job) => job !== pinned) };
  }

  render() {
    const { pinned, rest } = this.ordered();
    const order = pinned ? [pinned, ...rest] : rest;
    const cards = order.map((job) => this.card(job, job === pinned));
    $("cards").replaceChildren(...cards);
    for (const id of [...this.cards.keys()]) {
      if (!this.jobs.has(id)) this.cards.delete(id);
    }
    $("empty").hidden = order.length > 0 || !this.loaded;
  }

  card(job, pinned) {
    let card = this.cards.get(job.id);
    if (!card) {
      card = el("article", { class: "card", tabindex: "0", data: { id: job.id },
        onclick: () => this.onOpen(job.id),
        onkeydown: (event) => { if (event.key === "Enter") this.onOpen(job.id); } },
        el("div", { class: "card-top" }, el("span", { class: "name" }),
          el("span", { class: "pin", text: "latest finished" }), el("span", { class: "badge" })),
        el("div", { class: "card-sub" }, el("span", { class: "langs" }),
          el("span", { class: "stage" })),
        el("div", { class: "bar" }),
        el("div", { class: "card-nums" }, el("span", { class: "percent" }),
          el("span", { class: "eta" }), el("span", { class: "rate" })),
        el("div", { class: "wait" }),
        el("div", { class: "error" }));
      this.cards.set(job.id, card);
    }
    const q = (selector) => card.querySelector(selector);
    card.dataset.state = job.state;
    card.classList.toggle("pinned", pinned);
    q(".name").textContent = job.name;
    q(".name").title = job.input || job.name;
    q(".badge").textContent = job.state;
    q(".badge").dataset.state = job.state;
    q(".langs").textContent = `${this.names[job.src] || job.src} → ${this.names[job.tgt] || job.tgt}`;
    q(".langs").title = `${job.src} → ${job.tgt}`;
    q(".stage").textContent = FINISHED.has(job.state) ? "" : job.note ? job.note : `stage ${job.stage}`;
    stageBar(q(".bar"), job);
    q(".percent").textContent = `${job.percent.toFixed(1)}%`;
    q(".rate").textContent = job.tokens_per_s ? `${Math.round(job.tokens_per_s)} tok/s` : "";
    const error = job.error && job.error.message ? `[${job.error.class}] ${job.error.message}` : "";
    q(".error").textContent = job.state === "FAILED" || job.state === "CANCELED" ? error : "";
    this.tick(card, job);
    return card;
  }

  // Once a second: ETAs count down and waits count towards their end.
  tick(card, job) {
    const entry = this.jobs.get(job.id);
    card.querySelector(".eta").textContent = etaText(job, entry ? entry.at : Date.now());
    card.querySelector(".wait").textContent =
      job.state === "RUNNING" && job.waiting ? waitingText(job.waiting) : "";
  }

  tickAll() {
    for (const [id, card] of this.cards) {
      const entry = this.jobs.get(id);
      if (entry && entry.job.state === "RUNNING") this.tick(card, entry.job);
    }
  }
}
