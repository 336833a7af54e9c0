// The submit form: a file by picker or drag-and-drop, two language pickers
// that search the 202 codes by name and code, the main options, and
// "reuse as template" filling it from a job's parameters.

import { HttpError, OfflineError, isOffline, request } from "./net.js";
import { $, el, toast } from "./ui.js";

const FIELDS = ["model", "format", "jsonl_field", "beams", "max_chunk_tokens", "priority",
  "length_ratio", "length_offset", "missing", "to", "columns", "delimiter"];
// Checkboxes, sent only where they differ from the server's default.
const SWITCHES = { in_place: false, overwrite_translated: false, fuzzy: true };

// A combobox (ARIA 1.2, list autocomplete): a text box with every matching
// language in a list under it. The highlighted option is announced through
// aria-activedescendant while focus stays in the box; Tab and Escape close
// the list, so it is never a stop of its own. The chosen code is
// picker.value.
class LanguagePicker {
  constructor(root, languages) {
    this.root = root;
    this.input = root.querySelector("input");
    this.list = root.querySelector("ul");
    this.languages = languages;
    this.value = "";
    this.active = -1;
    this.input.addEventListener("input", () => { this.value = ""; this.show(); this.check(); });
    this.input.addEventListener("focus", () => this.show());
    this.input.addEventListener("keydown", (event) => this.key(event));
    this.input.addEventListener("blur", () => setTimeout(() => this.settle(), 150));
  }

  matches() {
    const q = this.input.value.trim().toLowerCase();
    if (!q || this.value) return this.languages;
    const starts = [], contains = [];
    for (const lang of this.languages) {
      const code = lang.code.toLowerCase(), name = lang.name.toLowerCase();
      if (code.startsWith(q) || name.startsWith(q)) starts.push(lang);
      else if (code.includes(q) || name.includes(q)) contains.push(lang);
    }
    return starts.concat(contains);
  }

  show() {
    const found = this.matches();
    const base = this.list.id;
    this.list.replaceChildren(...found.map((lang, i) => el("li", {
      id: `${base}-${i}`, role: "option", "aria-selected": "false", data: { code: lang.code },
      onmousedown: (event) => { event.preventDefault(); this.choose(lang); },
    }, el("span", { text: lang.name }), el("code", { text: lang.code }))));
    this.list.hidden = found.length === 0;
    this.input.setAttribute("aria-expanded", String(!this.list.hidden));
    this.highlight(found.length ? 0 : -1);
  }

  hide() {
    this.list.hidden = true;
    this.input.setAttribute("aria-expanded", "false");
    this.input.removeAttribute("aria-activedescendant");
  }

  highlight(index) {
    const items = this.list.children;
    if (items[this.active]) {
      items[this.active].classList.remove("active");
      items[this.active].setAttribute("aria-selected", "false");
    }
    this.active = index;
    const item = items[index];
    if (!item) {
      this.input.removeAttribute("aria-activedescendant");
      return;
    }
    item.classList.add("active");
    item.setAttribute("aria-selected", "true");
    this.input.setAttribute("aria-activedescendant", item.id);
    item.scrollIntoView({ block: "nearest" });
  }

  key(event) {
    const count = this.list.childElementCount;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      if (this.list.hidden) this.show();
      this.highlight(Math.max(0, Math.min(this.list.childElementCount - 1,
        this.active + (event.key === "ArrowDown" ? 1 : -1))));
    } else if (event.key === "Enter" && !this.list.hidden && this.active >= 0 && count) {
      event.preventDefault();
      this.set(this.list.children[this.active].dataset.code);
    } else if (event.key === "Escape" && !this.list.hidden) {
      event.preventDefault();
      event.stopPropagation(); // the list closes, not the page's dialog
      this.hide();
    } else if (event.key === "Tab") {
      this.hide(); // Tab moves on to the next field, never into the list
    }
  }

  choose(lang) {
    this.value = lang.code;
    this.input.value = `${lang.name} (${lang.code})`;
    this.hide();
    this.check();
  }

  set(code) {
    const lang = this.languages.find((l) => l.code === code);
    if (lang) this.choose(lang);
  }

  // The box is valid once a language is chosen (the form checks it).
  check() {
    this.input.setCustomValidity(this.value || !this.input.value.trim() ? "" :
      "Pick a language from the list.");
  }

  // Leaving the box: an exact code or name typed counts as chosen.
  settle() {
    this.hide();
    if (this.value) return;
    const q = this.input.value.trim().toLowerCase();
    const exact = this.languages.find((l) => l.code.toLowerCase() === q || l.name.toLowerCase() === q);
    if (exact) this.choose(exact);
    else this.check();
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
    // The browser's own bubbles are replaced by one message (see submit()).
    this.form.noValidate = true;
    this.form.addEventListener("submit", (event) => { event.preventDefault(); this.submit(); });
  }

  pick(file) {
    this.file = file || null;
    if (!file) $("file").value = ""; // the picker shows no file and keeps none
    $("file-name").textContent = file ? `${file.name} (${file.size.toLocaleString()} bytes)` : "";
  }

  say(text, kind = "") {
    const message = $("submit-message");
    message.textContent = text;
    message.className = `message ${kind}`;
  }

  async submit() {
    if (isOffline()) return this.say("Offline: try again when the connection is back.", "bad");
    if (!this.file) {
      $("file").focus();
      return this.say("Choose a document first.", "bad");
    }
    this.src.settle();
    this.tgt.settle();
    if (!this.src.value || !this.tgt.value) {
      (this.src.value ? this.tgt : this.src).input.focus();
      return this.say("Pick both languages from the lists.", "bad");
    }
    if (!this.form.checkValidity()) {
      const bad = this.form.querySelector(":invalid");
      const label = bad && bad.labels && bad.labels[0] ? bad.labels[0].textContent : "A field";
      this.say(`${label}: ${bad ? bad.validationMessage : "check the form"}`, "bad");
      if (bad) bad.focus();
      return;
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
    $("file").focus();
    toast("Form filled from the job's options");
  }
}
