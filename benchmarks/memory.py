#!/usr/bin/env python3
"""What the translation memory saves: a revised document, and subtitles.

    python benchmarks/memory.py [--sentences 2000] [--edited 0.05] [--model random|trained|DIR]
                                [--backend ctranslate2|hf] [--quality repair|flag|off]
    python benchmarks/memory.py --sentences 20 --edited 0.1 --subtitle-cues 30   # smoke

Jobs run at the CLI's defaults (CTranslate2 for an NLLB checkpoint, beams
4, the length rule 2.0 x bucket + 16, ``--quality repair``) unless told
otherwise.

1. A document of ``--sentences`` distinct sentences is translated into an
   empty store; then the same document with ``--edited`` of its sentences
   changed is translated into the same store. Prints both wall times (the
   whole job: preprocess, inference, postprocess, upload; model loading
   excluded) and each stage's, the time spent inside the model's calls,
   the ratio of the jobs' times and of their inference stages' (the
   target, issue 19's: the revision's inference under 10% of the first's),
   the sentences inference saw the second time, and checks that the second
   output is byte-identical to a from-scratch translation of the revised
   document (``--no-check`` skips that third run). Preprocess segments and
   counts the tokens of the whole document again whatever the memory
   holds, so on a tiny model it is a large share of a revision's job.
2. A subtitle file with repeated lines (the real Netflix WebVTT of
   ../shared/corpus when it is there, else a generated SRT whose lines
   repeat the way dialogue does) is translated once: prints its cues, its
   chunks, its distinct texts and the texts inference was asked for.

The tiny random-weight model always runs to its output budget, and its
fixed costs (segmentation, token counting, the store) weigh more against
its fast inference than a real model's would, so the ratio it gives is an
upper bound of what a real checkpoint shows. So does a call's own cost:
the edited sentences of a revision are few, but they fall in as many
length buckets as the whole document's (a batch shares one output budget,
``pipeline/budget.py``), so the revision makes one small call per bucket
and ladder rung, and the transformers backend spends about 0.1 s of CPU
on a greedy call of one sentence (budget 68) against 0.8 s on one of 64
(budget 116) (``benchmarks/hf_call.py``; 0.2 s and 1.0 s through
generate(); CTranslate2: 0.03 s on one sentence, 0.5 s on 150).
``--backend ctranslate2`` measures the memory with less of that overhead
in the way.

The repair ladder (``--quality``, default repair as the CLI's) decodes a
looping output again with a guard, and then its clauses: on random weights
nearly every sentence loops. Such decodes are the ladder's, not repeats, so
what is counted is decodes of a (text, decoding) pair: a plain decode is a
sentence the memory did not answer. The memory keeps what each sentence
delivered, the ladder's work included (a split sentence's pieces joined),
so the revision decodes the edited sentences and their ladder's pieces, and
nothing else. The checks are what must hold whatever the ladder did: the
revision decodes plainly exactly the sentences the memory does not hold,
and the subtitles' job decodes each of its rows once and no text twice at
one rung: a repeated fragment or clause (a line's piece around a character
the tokenizer cannot read, "Est" of "Está") waits on its first occurrence
as a repeated line does. Rungs 1 and 2 decode with the same settings, so
one text may be decoded at both (a line's guarded decode, another line's
clause): their verdicts differ (a failing rung 1 is split, a failing rung
2 flagged), so neither may take the other's. ``--quality off`` measures
the memory alone.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models import build_tiny_model  # noqa: E402
from models.backends import open_translator  # noqa: E402
from pipeline.config import JobParams, RunSettings  # noqa: E402
from pipeline.documents.inputs import read_input  # noqa: E402
from pipeline.jobs import submit  # noqa: E402
from pipeline.runner import run_job  # noqa: E402
from pipeline.samples import sentence  # noqa: E402
from pipeline.store import Store  # noqa: E402

JOB_DEFAULTS = {f.name: f.default for f in dataclasses.fields(JobParams)}

SUBTITLES = ROOT.parent / "shared" / "corpus" / "webvtt_netflix_las_chicas_del_cable.spa_Latn.vtt"


class Counting:
    """The translator, counting calls and the (text, decoding) pairs it is given."""

    def __init__(self, inner):
        self.inner, self.calls, self.decodes = inner, 0, []
        self.call_s = 0.0  # inside the model's calls

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def translate_batch(self, texts, src, tgt, decoding):
        self.calls += 1
        self.decodes += [(t, decoding) for t in texts]
        start = time.perf_counter()
        try:
            return self.inner.translate_batch(texts, src, tgt, decoding)
        finally:
            self.call_s += time.perf_counter() - start

    def plain(self) -> list[str]:
        """Texts decoded without the ladder's guard: rung 0, a sentence as it is."""
        return [t for t, d in self.decodes if d.no_repeat_ngram_size == 0]


def run(store: Store, translator, src: Path, out: Path, args, *, src_lang="eng_Latn",
        fmt="text") -> dict:
    params = JobParams(model=translator.describe().model, src_lang=src_lang,
                       tgt_lang="fra_Latn", fmt=fmt, output=str(out), beams=args.beams,
                       length_ratio=args.length_ratio, length_offset=args.length_offset,
                       quality=args.quality)
    job, _ = submit(store, params, read_input(src))
    counting = Counting(translator)
    start = time.perf_counter()
    final = run_job(store, job.id, counting, settings=RunSettings(threads=args.threads))
    seconds = time.perf_counter() - start
    chunks = store.chunks(job.id)
    stages = {r.stage: round(r.wall_s or 0, 3) for r in store.stage_runs(job.id)}
    # The rows inference had to decode: the document's and the ladder's
    # (a guarded copy, a fragment, a clause), less the repeats of another
    # row of the same text and rung, and what the memory answered.
    work = [(c.source, c.rung) for c in chunks
            if c.n_tokens and c.reused is None and c.dup_of is None]
    chunks = [c for c in chunks if c.parent is None]  # the document's, not the ladder's rows
    sentences = {c.source for c in chunks}
    return {"state": final.state, "seconds": seconds, "stages_s": stages,
            "chunks": len(chunks), "distinct": len(sentences),
            "calls": counting.calls, "call_s": round(counting.call_s, 3),
            "inferred": len(counting.decodes),
            "inferred_distinct": len(set(counting.decodes)), "plain": len(counting.plain()),
            "work": len(work), "work_distinct": len(set(work)),
            "reused": store.job_counters([job.id])[job.id].reused, "output": out.read_bytes(),
            "sources": sentences, "remembered": {e.source for e in store.memory_entries()}}


def document(sentences: list[str]) -> str:
    return "\n\n".join(" ".join(sentences[i:i + 5]) for i in range(0, len(sentences), 5)) + "\n"


def generated_subtitles(n_cues: int, n_lines: int, seed: int) -> str:
    """An SRT whose lines repeat as dialogue does: a few very often, most rarely."""
    rng = random.Random(seed)
    lines, seen = [], set()
    while len(lines) < n_lines:
        s = sentence(rng)
        if s not in seen and len(s.split()) <= 12:
            lines.append(s)
            seen.add(s)
    weights = [1 / (rank + 1) for rank in range(n_lines)]  # Zipf
    cues = []
    for i in range(n_cues):
        start = 2 * i
        cues.append(f"{i + 1}\n00:{start // 60:02d}:{start % 60:02d},000 --> "
                    f"00:{(start + 1) // 60:02d}:{(start + 1) % 60:02d},500\n"
                    f"{rng.choices(lines, weights)[0]}\n")
    return "\n".join(cues)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=2000)
    parser.add_argument("--edited", type=float, default=0.05, help="fraction edited (0.05)")
    parser.add_argument("--model", default="random",
                        help="'random' (default: the tiny model with random weights, "
                             "--d-model wide), 'trained' (the trained test model, "
                             "models/trained.py) or a checkpoint directory")
    parser.add_argument("--d-model", type=int, default=64, help="tiny model width (default 64)")
    parser.add_argument("--layers", type=int, default=2, help="tiny model layers (default 2)")
    # A job's defaults are the CLI's (pipeline.config.JobParams).
    parser.add_argument("--beams", type=int, default=JOB_DEFAULTS["beams"],
                        help=f"beam width (default {JOB_DEFAULTS['beams']}, the CLI's)")
    parser.add_argument("--length-ratio", type=float, default=JOB_DEFAULTS["length_ratio"],
                        help=f"output budget per bucket token (default "
                             f"{JOB_DEFAULTS['length_ratio']}, the CLI's)")
    parser.add_argument("--length-offset", type=int, default=JOB_DEFAULTS["length_offset"],
                        help=f"output budget's extra tokens (default "
                             f"{JOB_DEFAULTS['length_offset']}, the CLI's)")
    parser.add_argument("--backend", choices=("hf", "ctranslate2"), default="ctranslate2",
                        help="CTranslate2 (default, as the CLI's auto picks for an NLLB "
                             "checkpoint; converted first, into the usual cache) or "
                             "transformers")
    parser.add_argument("--threads", type=int, default=1,
                        help="the backend's CPU threads (1: steady timings on a shared "
                             "machine)")
    parser.add_argument("--quality", choices=("repair", "flag", "off"), default="repair",
                        help="the jobs' --quality (default repair, as the CLI's)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--subtitle-cues", type=int, default=0,
                        help="a generated SRT of this many cues even where the real WebVTT is "
                             "there (default: the real file, else 1500 generated cues)")
    parser.add_argument("--no-check", action="store_true",
                        help="skip the from-scratch run the second output is compared with")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.model == "random":
            model = str(build_tiny_model(work / "tiny", d_model=args.d_model,
                                         layers=args.layers))
        elif args.model == "trained":
            from models.trained import trained_model_dir

            model = str(trained_model_dir(log=lambda *a: None))
        else:
            model = args.model
        translator = open_translator(model, RunSettings(threads=args.threads,
                                                        backend=args.backend))
        translator.load()  # load time is not what we measure

        rng = random.Random(args.seed)
        sentences, seen = [], set()
        while len(sentences) < args.sentences:
            s = sentence(rng)
            if s not in seen:
                sentences.append(s)
                seen.add(s)
        doc = work / "manual.txt"
        doc.write_text(document(sentences))
        store = Store(work / "jobs.db")
        first = run(store, translator, doc, work / "v1.txt", args)
        for i in rng.sample(range(len(sentences)), round(args.edited * len(sentences))):
            sentences[i] = "Again, " + sentences[i][0].lower() + sentences[i][1:]
        doc.write_text(document(sentences))
        second = run(store, translator, doc, work / "v2.txt", args)
        identical = None
        if not args.no_check:
            scratch = run(Store(work / "scratch.db"), translator, doc, work / "v3.txt", args)
            identical = scratch["output"] == second["output"]

        if SUBTITLES.is_file() and not args.subtitle_cues:
            subs, sub_lang, label = SUBTITLES, "spa_Latn", SUBTITLES.name
        else:
            cues = args.subtitle_cues or 1500
            subs, sub_lang, label = work / "subs.srt", "eng_Latn", "generated SRT"
            subs.write_text(generated_subtitles(cues, max(1, cues // 5), args.seed))
        cues = subs.read_text(encoding="utf-8-sig").count("-->")
        subtitles = run(Store(work / "subs.db"), translator, subs, work / "subs.out",
                        args, src_lang=sub_lang, fmt="vtt" if subs.suffix == ".vtt" else "srt")

    new_chunks = len(second["sources"] - first["sources"])
    # What inference had to see plainly: the new sentences, and any the
    # first run did not leave in the memory.
    unanswered = len(second["sources"] - first["remembered"])
    for r in (first, second, subtitles):
        r.pop("output"), r.pop("sources"), r.pop("remembered")
    revised = {"first": first, "second": second, "ratio": second["seconds"] / first["seconds"],
               "inference_ratio": (second["stages_s"].get("inference", 0)
                                   / max(first["stages_s"].get("inference", 0), 1e-9)),
               "identical_to_scratch": identical}
    result = {"model": model, "revised": revised,
              "subtitles": {"file": label, "cues": cues, **subtitles}}
    result["revised"]["unanswered"] = unanswered
    if args.json:
        print(json.dumps(result))
    else:
        print(f"model {model} on {args.backend}, beams {args.beams}, length rule "
              f"{args.length_ratio} x bucket + {args.length_offset}, --quality {args.quality}")
        print(f"revised document: {args.sentences} sentences, {args.edited:.0%} edited")
        for name, r in (("first", first), ("second", second)):
            print(f"  {name:<6} {r['seconds']:8.2f} s ("
                  + ", ".join(f"{k} {v:.2f}" for k, v in r["stages_s"].items()) + ")  "
                  f"chunks {r['chunks']}, inferred {r['inferred']} ({r['plain']} plainly) in "
                  f"{r['calls']} calls ({r['call_s']:.2f} s in them), reused "
                  f"{r['reused']['memory']} from the memory")
        print(f"  new chunks in the revision: {new_chunks}; sentences the memory did not hold: "
              f"{unanswered}; decoded plainly: {second['plain']}")
        print(f"  second / first: {revised['ratio']:.1%} of the job, "
              f"{revised['inference_ratio']:.1%} of inference (target < 10%); output identical "
              f"to a from-scratch run: {identical if identical is not None else 'not checked'}")
        print(f"subtitles ({label}): {cues} cues, {subtitles['chunks']} chunks, "
              f"{subtitles['distinct']} distinct; inference saw {subtitles['inferred']} texts "
              f"({subtitles['inferred_distinct']} distinct with their decoding; the ladder's "
              f"rows to decode: {subtitles['work']}, {subtitles['work_distinct']} distinct "
              f"with their rung) in "
              f"{subtitles['calls']} calls; "
              f"{subtitles['reused']['document']} repeats reused")
    ok = (identical is not False and second["plain"] == unanswered
          and subtitles["inferred"] == subtitles["work"] == subtitles["work_distinct"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
