// The list of jobs: one card per job, keyed by its id and updated in place,
// so focus, a selection and the scroll position survive every update. The
// running jobs and the recent failures come first, then the newest jobs;
// older ones page in by a cursor. Fed by polling GET /api/jobs with its ETag
// (a 304 costs almost nothing) and by the event stream of an open detail.

import { request } from "./net.js";
import { $, FINISHED, announce, el, etaText, stageBar, syncClock, waitingText } from "./ui.js";

const FILTERS = ["ALL", "QUEUED", "RUNNING", "INTERRUPTED", "SUCCEEDED", "FAILED", "CANCELED"];
const LIMIT = 200;

export class JobList {
  // onOpen(id) opens a job's detail; onWake(job) ends a retry's wait.
  constructor(languageNames, { onOpen, onWake, onSelection }) {
    this.names = languageNames;
    this.onOpen = onOpen;
    this.onWake = onWake;
    this.onSelection = onSelection || (() => {});
    this.jobs = new Map(); // id -> {job, at: when we received it (ms)}
    this.cards = new Map(); // id -> card element
    this.attention = []; // ids of the running jobs and recent failures, in order
    this.page = []; // ids of the first page, newest first
    this.older = []; // ids paged in with "Show older jobs"
    this.cursor = null; // where the next page starts
    this.selected = new Set();
    this.announced = new Set();
    this.filter = "ALL";
    this.query = "";
    this.etag = null;
    this.counts = {};
    this.loaded = false;
    // Jobs that finish after this (server time) are announced, whether or
    // not the page ever saw them unfinished; moved to each poll's "now".
    this.seenUntil = null;
    this.renderFilters();
    let typing = null;
    $("search").addEventListener("input", () => {
      clearTimeout(typing);
      typing = setTimeout(() => this.search($("search").value.trim()), 300);
    });
    $("more").addEventListener("click", () => this.more());
  }

  renderFilters() {
    const box = $("filters");
    if (box.childElementCount !== FILTERS.length) {
      box.replaceChildren(...FILTERS.map((state) => el("button", {
        type: "button", class: "chip", data: { state }, onclick: () => this.setFilter(state),
      })));
    }
    for (const chip of box.children) {
      const state = chip.dataset.state;
      chip.classList.toggle("on", state === this.filter);
      chip.setAttribute("aria-pressed", String(state === this.filter));
      chip.textContent = state === "ALL" ? "All" : `${state[0]}${state.slice(1).toLowerCase()}` +
        (this.counts[state] ? ` ${this.counts[state]}` : "");
    }
  }

  setFilter(state) {
    this.filter = state;
    this.restart();
  }

  search(query) {
    if (query === this.query) return;
    this.query = query;
    this.restart();
  }

  restart() {
    this.etag = null;
    this.older = [];
    this.renderFilters();
    this.poll().catch(() => {});
  }

  queryString(cursor) {
    const params = new URLSearchParams({ limit: String(LIMIT) });
    if (this.filter !== "ALL") params.set("state", this.filter);
    if (this.query) params.set("q", this.query);
    if (cursor) params.set("cursor", cursor);
    return params.toString();
  }

  async poll() {
    const answer = await request(`/api/jobs?${this.queryString(null)}`, { etag: this.etag });
    if (answer.status === 304) return false;
    const data = answer.data;
    this.etag = answer.etag;
    syncClock(data.now);
    this.counts = data.counts;
    const at = Date.now();
    for (const job of [...data.attention, ...data.jobs]) this.remember(job, at);
    this.attention = data.attention.map((job) => job.id);
    this.page = data.jobs.map((job) => job.id);
    if (!this.older.length) this.cursor = data.next_cursor;
    this.notify(data);
    const keep = new Set([...this.attention, ...this.page, ...this.older]);
    for (const id of [...this.jobs.keys()]) if (!keep.has(id)) this.jobs.delete(id);
    this.loaded = true;
    this.renderFilters();
    this.render();
    return true;
  }

  async more() {
    if (!this.cursor) return;
    const { data } = await request(`/api/jobs?${this.queryString(this.cursor)}`);
    const at = Date.now();
    for (const job of data.jobs) {
      this.remember(job, at);
      if (!this.older.includes(job.id)) this.older.push(job.id);
    }
    this.cursor = data.next_cursor;
    this.render();
  }

  // Every job that finished since the previous poll is announced once,
  // also one submitted elsewhere or finished between two hidden-tab polls.
  notify(data) {
    const since = this.seenUntil ?? data.now - performance.now() / 1000;
    for (const job of data.recently_finished) {
      const end = `${job.id}@${job.finished_at}`; // a retried job that ends again is news
      if (job.finished_at > since && !this.announced.has(end)) {
        this.announced.add(end);
        if (job.state !== "CANCELED") announce(job);
      }
    }
    this.seenUntil = data.now;
  }

  // A job as the server sent it (list or event).
  remember(job, at = Date.now()) {
    this.jobs.set(job.id, { job, at });
  }

  update(job) {
    if (this.jobs.has(job.id)) {
      this.remember(job);
      this.render();
    }
  }

  get(id) {
    const entry = this.jobs.get(id);
    return entry ? entry.job : null;
  }

  order() {
    const ids = [...new Set([...this.attention, ...this.page, ...this.older])];
    return ids.filter((id) => this.jobs.has(id));
  }

  // Keyed, in place: a card is created once per job and moved only when its
  // place changed; whatever had focus inside the list keeps it.
  render() {
    const box = $("cards");
    const focused = box.contains(document.activeElement) ? document.activeElement : null;
    const ids = this.order();
    const attention = new Set(this.attention);
    ids.forEach((id, i) => {
      const card = this.card(this.get(id), attention.has(id));
      if (box.children[i] !== card) box.insertBefore(card, box.children[i] || null);
    });
    while (box.children.length > ids.length) box.lastElementChild.remove();
    for (const id of [...this.cards.keys()]) {
      if (!this.jobs.has(id)) {
        this.cards.delete(id);
        this.selected.delete(id);
      }
    }
    if (focused && focused.isConnected && document.activeElement !== focused) {
      focused.focus({ preventScroll: true });
    }
    $("empty").hidden = ids.length > 0 || !this.loaded;
    $("empty").textContent = this.query || this.filter !== "ALL" ? "No job matches." :
      "No jobs yet. Submit a document above.";
    $("more").hidden = !this.cursor;
    this.onSelection(this.selection());
  }

  selection() {
    return [...this.selected].filter((id) => this.jobs.has(id)).map((id) => this.get(id));
  }

  clearSelection() {
    this.selected.clear();
    for (const card of this.cards.values()) card.querySelector(".select").checked = false;
    this.onSelection([]);
  }

  selectAll() {
    for (const id of this.order()) this.selected.add(id);
    for (const card of this.cards.values()) card.querySelector(".select").checked = true;
    this.onSelection(this.selection());
  }

  card(job, attention) {
    let card = this.cards.get(job.id);
    if (!card) {
      const id = job.id;
      const nameId = `name-${id}`;
      card = el("li", { class: "card", data: { id }, "aria-labelledby": nameId,
        onclick: (event) => {
          if (!event.target.closest("a, button, input")) this.onOpen(id);
        } },
        el("div", { class: "card-top" },
          el("input", { type: "checkbox", class: "select", "aria-label": "select",
            onchange: (event) => {
              if (event.target.checked) this.selected.add(id); else this.selected.delete(id);
              this.onSelection(this.selection());
            } }),
          el("h3", { class: "name-box" }, el("a", { class: "name", id: nameId, href: `/jobs/${id}`,
            onclick: (event) => { event.preventDefault(); this.onOpen(id); } })),
          el("span", { class: "tag" }), el("span", { class: "badge" })),
        el("div", { class: "card-sub" }, el("span", { class: "langs" }),
          el("span", { class: "stage" })),
        el("div", { class: "bar" }),
        el("div", { class: "card-nums" }, el("span", { class: "percent" }),
          el("span", { class: "eta" }), el("span", { class: "rate" })),
        el("div", { class: "wait" }, el("span", { class: "wait-text" }),
          el("button", { type: "button", class: "wake small",
            onclick: () => this.onWake(this.get(id)) }, "Retry now")),
        el("div", { class: "error" }));
      this.cards.set(job.id, card);
    }
    const q = (selector) => card.querySelector(selector);
    card.dataset.state = job.state;
    q(".name").textContent = job.name;
    q(".name").title = job.input || job.name;
    q(".select").setAttribute("aria-label", `select ${job.name}`);
    q(".select").checked = this.selected.has(job.id);
    q(".badge").textContent = job.state;
    q(".badge").dataset.state = job.state;
    q(".tag").textContent = !attention ? "" : job.state === "FAILED" ? "recent failure" : "";
    q(".langs").textContent = `${this.names[job.src] || job.src} → ${this.names[job.tgt] || job.tgt}`;
    q(".langs").title = `${job.src} → ${job.tgt}`;
    q(".stage").textContent = stageLine(job);
    stageBar(q(".bar"), job);
    q(".bar").setAttribute("aria-label", `progress of ${job.name}`);
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
    const waiting = job.state === "RUNNING" && job.waiting;
    card.querySelector(".wait-text").textContent = waiting ? waitingText(job.waiting) : "";
    card.querySelector(".wait").hidden = !waiting;
  }

  tickAll() {
    for (const [id, card] of this.cards) {
      const entry = this.jobs.get(id);
      if (entry && entry.job.state === "RUNNING") this.tick(card, entry.job);
    }
  }
}

// "stage inference · 142 of 524 chunks", "3rd in the queue", or a note.
export function stageLine(job) {
  if (FINISHED.has(job.state)) return "";
  if (job.note) return job.note;
  if (job.state === "QUEUED" && job.queue_position) return `#${job.queue_position} in the queue`;
  const units = job.stage_units;
  return units && units.total ? `${job.stage} ${units.done.toLocaleString()} / ` +
    `${units.total.toLocaleString()} ${units.unit}` : `stage ${job.stage}`;
}
