// The submit form: a file by picker or drag-and-drop, two language pickers
// that search the 202 codes by name and code, the main options, and
// "reuse as template" filling it from a job's parameters.

import { HttpError, OfflineError, isOffline, request } from "./net.js";
import { $, el, toast } from "./ui.js";

const FIELDS = ["model", "format", "jsonl_field", "beams", "max_chunk_tokens", "priority",
  "length_ratio", "length_offset", "missing", "to", "columns", "delimiter"];
// Checkboxes, sent only where they differ from the server's default.
const SWITCHES = { in_place: false, overwrite_translated: false, fuzzy: true };

// A text box with a list under it; the chosen code is picker.value.
class LanguagePicker {
  constructor(root, languages) {
    this.root = root;
    this.input = root.querySelector("input");
    this.list = root.querySelector("ul");
    this.languages = languages;
    this.value = "";
    this.active = -1;
    this.input.addEventListener("input", () => { this.value = ""; this.show(); });
    this.input.addEventListener("focus", () => this.show());
    this.input.addEventListener("keydown", (event) => this.key(event));
    this.input.addEventListener("blur", () => setTimeout(() => this.settle(), 150));
  }

  matches() {
    const q = this.input.value.trim().toLowerCase();
    if (!q) return this.languages;
    const starts = [], contains = [];
    for (const lang of this.languages) {
      const code = lang.code.toLowerCase(), name = lang.name.toLowerCase();
      if (code.startsWith(q) || name.startsWith(q)) starts.push(lang);
      else if (code.includes(q) || name.includes(q)) contains.push(lang);
    }
    return starts.concat(contains);
  }

  show() {
    const found = this.matches().slice(0, 50);
    this.active = found.length ? 0 : -1;
    this.list.replaceChildren(...found.map((lang, i) => el("li", {
      role: "option", data: { code: lang.code }, class: i === 0 ? "active" : "",
      onmousedown: (event) => { event.preventDefault(); this.choose(lang); },
    }, el("span", { text: lang.name }), el("code", { text: lang.code }))));
    this.list.hidden = found.length === 0;
    this.input.setAttribute("aria-expanded", String(!this.list.hidden));
  }

  key(event) {
    const items = [...this.list.children];
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      if (this.list.hidden) this.show();
      this.active = Math.max(0, Math.min(items.length - 1,
        this.active + (event.key === "ArrowDown" ? 1 : -1)));
      items.forEach((item, i) => item.classList.toggle("active", i === this.active));
      if (items[this.active]) items[this.active].scrollIntoView({ block: "nearest" });
    } else if (event.key === "Enter" && !this.list.hidden && items[this.active]) {
      event.preventDefault();
      this.set(items[this.active].dataset.code);
    } else if (event.key === "Escape") {
      this.list.hidden = true;
    }
  }

  choose(lang) {
    this.value = lang.code;
    this.input.value = `${lang.name} (${lang.code})`;
    this.list.hidden = true;
    this.input.setAttribute("aria-expanded", "false");
  }

  set(code) {
    const lang = this.languages.find((l) => l.code === code);
    if (lang) this.choose(lang);
  }

  // Leaving the box: an exact code or name typed counts as chosen.
  settle() {
    this.list.hidden = true;
    if (this.value) return;
    const q = this.input.value.trim().toLowerCase();
    const exact = this.languages.find((l) => l.code.toLowerCase() === q || l.name.toLowerCase() === q);
    if (exact) this.choose(exact);
  }
}

export class SubmitForm {
  constructor(info, onSubmitted) {
    this.form = $("submit-form");
    this.onSubmitted = onSubmitted;
    this.file = null;
    this.src = new LanguagePicker(this.form.querySelector('[data-name="src"]'), info.languages);
    this.tgt = new LanguagePicker(this.form.querySelector('[data-name="tgt"]'), info.languages);
    this.src.set("eng_Latn");
    $("model").placeholder = info.default_model;
    for (const fmt of info.formats.filter((f) => f !== "auto")) {
      $("format").append(el("option", { value: fmt, text: fmt }));
    }
    $("format").addEventListener("change", () => {
      $("jsonl-field").hidden = $("format").value !== "jsonl";
    });
    $("file").addEventListener("change", () => this.pick($("file").files[0]));
    const drop = $("drop");
    for (const type of ["dragenter", "dragover"]) {
      drop.addEventListener(type, (event) => { event.preventDefault(); drop.classList.add("over"); });
    }
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (event) => {
      event.preventDefault();
      drop.classList.remove("over");
      if (event.dataTransfer.files.length) this.pick(event.dataTransfer.files[0]);
    });
    this.form.addEventListener("submit", (event) => { event.preventDefault(); this.submit(); });
  }

  pick(file) {
    this.file = file || null;
    $("file-name").textContent = file ? `${file.name} (${file.size.toLocaleString()} bytes)` : "";
  }

  say(text, kind = "") {
    const message = $("submit-message");
    message.textContent = text;
    message.className = `message ${kind}`;
  }

  async submit() {
    if (isOffline()) return this.say("Offline: try again when the connection is back.", "bad");
    if (!this.file) return this.say("Choose a document first.", "bad");
    this.src.settle();
    this.tgt.settle();
    if (!this.src.value || !this.tgt.value) {
      return this.say("Pick both languages from the lists.", "bad");
    }
    const body = new FormData();
    body.append("file", this.file, this.file.name);
    body.append("src", this.src.value);
    body.append("tgt", this.tgt.value);
    for (const name of FIELDS) {
      const value = $(name).value.trim();
      if (value && !(name === "format" && value === "auto")) body.append(name, value);
    }
    for (const [name, byDefault] of Object.entries(SWITCHES)) {
      if ($(name).checked !== byDefault) body.append(name, String($(name).checked));
    }
    $("submit-button").disabled = true;
    try {
      const { status, data } = await request("/api/jobs", { method: "POST", body });
      this.say(status === 201 ? `Queued ${data.name}.` : `${data.name} was already submitted: ` +
        "showing that job.", "good");
      this.onSubmitted(data);
    } catch (error) {
      if (error instanceof OfflineError) this.say("Offline: nothing was sent.", "bad");
      else if (error instanceof HttpError) this.say(error.message, "bad");
      else throw error;
    } finally {
      $("submit-button").disabled = false;
    }
  }

  // Fill the form from a job's stored parameters ("reuse as template").
  fill(job) {
    const p = job.params;
    this.src.set(p.src_lang);
    this.tgt.set(p.tgt_lang);
    const values = {
      model: p.model, format: p.fmt, jsonl_field: p.jsonl_field, beams: p.beams,
      max_chunk_tokens: p.max_chunk_tokens, priority: job.priority, length_ratio: p.length_ratio,
      length_offset: p.length_offset, missing: p.missing,
      to: /^https?:/.test(p.sink || "") ? p.sink : "", columns: p.columns || "",
      delimiter: p.delimiter === "\t" ? "tab" : p.delimiter || "",
    };
    for (const [name, value] of Object.entries(values)) {
      if (value !== undefined && value !== null) $(name).value = String(value);
    }
    for (const [name, byDefault] of Object.entries(SWITCHES)) {
      $(name).checked = p[name] === undefined ? byDefault : Boolean(p[name]);
    }
    $("jsonl-field").hidden = $("format").value !== "jsonl";
    this.pick(null);
    this.say(`Options of ${job.name} filled in: choose a document and translate.`);
    this.form.scrollIntoView({ behavior: "smooth", block: "start" });
    toast("Form filled from the job's options");
  }
}
