// The body of a job's detail: stage timings, chunk counts, failed chunks,
// the attempt log (the real errors first, the quality ladder's repairs
// folded away) and the delivery. Plain rendering of what the server sent.

import { $, STAGES, el, formatTime } from "./ui.js";

export function renderBody(job, attempts) {
  const p = job.params;
  $("detail-meta").textContent = `${job.src} → ${job.tgt} · ${job.format} · beams ${p.beams}` +
    ` · ${p.model} · job ${job.id} · created ${formatTime(job.created_at)}` +
    (job.finished_at ? ` · finished ${formatTime(job.finished_at)}` : "");
  renderStages(job);
  const c = job.chunk_progress;
  const n = (x) => x.toLocaleString("en");
  // the same sentence as `show` (pipeline/cli/read.py chunks_text)
  $("detail-chunks").textContent = `${n(c.done)} of ${n(c.total)} done` +
    (c.reused ? ` (${n(c.reused)} reused, no inference)` : "") + `, ${n(c.failed)} failed, ` +
    `${n(c.pending)} pending` + (c.split ? `; ${n(c.split)} split by the quality ladder into ` +
    `${n(c.pieces)} pieces, each counted as a chunk` : "");
  $("detail-failed-wrap").hidden = job.failed_chunks.length === 0;
  $("detail-failed").replaceChildren(...job.failed_chunks.map((chunk) => el("li", {},
    el("strong", { text: `chunk ${chunk.chunk}` }),
    el("span", { class: "muted", text: ` · ${chunk.attempts} attempt(s) · ` }),
    el("span", { class: "error", text: chunk.last_error || "" }),
    el("div", { class: "source", text: chunk.source }))));
  renderAttempts(attempts);
  const d = job.delivery;
  $("detail-delivery").textContent = d ? `${d.target} · ${d.bytes} bytes · sha256 ` +
    `${(d.sha256 || "").slice(0, 16)}…` + (d.status ? ` · HTTP ${d.status}` : "")
    : job.has_output ? "not delivered: the translation is complete; download it here"
      : "not delivered yet";
}

function renderStages(job) {
  const runs = new Map();
  for (const run of job.stages) {
    const seen = runs.get(run.stage) || { wall: 0, done: 0, total: 0, n: 0 };
    seen.wall += run.wall_s ?? run.ran_s ?? 0;
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
      el("td", { text: run && run.total !== null ? `${Math.round(run.done ?? 0).toLocaleString()} / ` +
        `${Math.round(run.total).toLocaleString()}` : "–" }));
  }));
}

function renderAttempts(attempts) {
  const quality = attempts.filter((a) => a.error_class === "quality");
  const errors = attempts.filter((a) => a.error_class !== "quality");
  errors.sort((a, b) => b.at - a.at); // the latest (the one that decided) first
  $("detail-no-attempts").hidden = errors.length > 0;
  $("detail-no-attempts").textContent = quality.length ? "No failed attempts besides the " +
    "quality repairs below." : "No failed attempts.";
  $("detail-attempts").hidden = errors.length === 0;
  $("detail-attempts").replaceChildren(...errors.map(attemptItem));
  $("detail-quality-wrap").hidden = quality.length === 0;
  $("detail-quality-summary").textContent = `${quality.length} quality repair(s)`;
  if (!$("detail-quality-wrap").open) $("detail-quality").replaceChildren();
  const fill = () => $("detail-quality").replaceChildren(...quality.map(attemptItem));
  $("detail-quality-wrap").ontoggle = () => { if ($("detail-quality-wrap").open) fill(); };
  if ($("detail-quality-wrap").open) fill();
}

function attemptItem(a) {
  return el("li", {},
    el("div", { class: "attempt-head" },
      el("span", { text: new Date(a.at * 1000).toLocaleTimeString() }),
      el("strong", { text: a.error_class }),
      el("span", { text: `${where(a)} · try ${a.attempt} · ${a.decision}` +
        (a.delay_s ? ` (${a.delay_s.toFixed(1)} s)` : "") }),
      el("code", { text: a.trace_id || "" })),
    el("div", { class: "message", text: a.message }));
}

// Everything the page knows about the job's failures, as text to paste.
export function logText(job, attempts) {
  const lines = [`job ${job.id} ${job.name} ${job.state} (stage ${job.stage}, ${job.percent}%)`];
  if (job.error && job.error.message) lines.push(`error: [${job.error.class}] ${job.error.message}`);
  for (const a of attempts) {
    lines.push(`${new Date(a.at * 1000).toISOString()} [${a.trace_id}] ${where(a)}: ` +
      `${a.error_class} attempt ${a.attempt} -> ${a.decision}` +
      (a.delay_s ? ` after ${a.delay_s.toFixed(1)} s` : "") + `: ${a.message}`);
  }
  for (const chunk of job.failed_chunks) {
    lines.push(`failed chunk ${chunk.chunk} (${chunk.attempts} attempts): ${chunk.last_error}`);
  }
  return lines.join("\n");
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
