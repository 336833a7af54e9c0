#!/usr/bin/env python3
"""What the output checks cost per 1,000 sentences, against inference.

    python benchmarks/quality.py --threads 1                  # tiny model, beams 4
    python benchmarks/quality.py --model DIR_OR_HUB_ID --device cuda --json

Judging (``pipeline.quality.ladder.Judge.verdicts``: placeholder check, then
the five quality checks) runs on real translations: the FLORES-200 devtest
references in Chinese, Arabic, Russian and Hindi, each judged as the
translation of its English sentence (``../shared/corpus``; without it,
generated sentences judged against themselves reversed). So the figure also
says how many good human translations the checks would flag (the false
positives, by reason): the thresholds' cost in repairs no one needed.

Inference is the same English sentences through ``translate_batch`` at the
pipeline's defaults (beams 4, budgets from the default length rule, planned
batches), on ``--infer`` of them (the tiny model's CPU time is what it is),
scaled to 1,000. The target: checks under 1% of inference time. A random
model runs every search to its budget, a real one stops earlier, so on a
real model inference is cheaper per sentence and the share is the one to
look at there; ``--model`` runs a real checkpoint.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
TARGETS = ("zho_Hans", "arb_Arab", "rus_Cyrl", "hin_Deva")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="model directory or hub id (default: build a tiny model)")
    p.add_argument("--sentences", type=int, default=1000, help="sentences judged (default 1000)")
    p.add_argument("--infer", type=int, default=200,
                   help="sentences translated to time inference (default 200)")
    p.add_argument("--repeat", type=int, default=5, help="rounds of judging; the fastest counts")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--json", action="store_true")
    return p.parse_args(argv)


def sentences(n: int) -> tuple[list[str], dict[str, list[str]]]:
    """English sentences and their references per target (FLORES), or generated ones."""
    english = CORPUS / "flores200_devtest.eng_Latn.txt"
    if english.is_file():
        src = english.read_text(encoding="utf-8").splitlines()[:n]
        refs = {t: (CORPUS / f"flores200_devtest.{t}.txt").read_text(
            encoding="utf-8").splitlines()[: len(src)] for t in TARGETS}
        return src, refs
    from pipeline.samples import generate_text

    src = [s for s in generate_text(n, seed=3).replace("\n", " ").split(". ") if s][:n]
    return src, {"fra_Latn": [" ".join(w[::-1] for w in s.split()) for s in src]}


def judge_cost(src: list[str], refs: dict[str, list[str]], repeat: int) -> dict:
    from pipeline.quality.ladder import Judge
    from pipeline.store import Chunk
    from pipeline.translator import Translation

    chunks = [Chunk("bench", i, 0, s, len(s.split()) + 2, "pending", None, None, 0, 0)
              for i, s in enumerate(src)]
    out = {}
    for tgt, texts in refs.items():
        judge = Judge(mode="repair", src_lang="eng_Latn", tgt_lang=tgt,
                      count_tokens=lambda ts: [len(t.split()) + 2 for t in ts])
        outputs = [Translation(t, len(t.split()), True) for t in texts]
        best, verdicts = float("inf"), None
        for _ in range(repeat):
            start = time.perf_counter()
            for k in range(0, len(chunks), 64):  # batch by batch, as inference judges
                verdicts = judge.verdicts(chunks[k : k + 64], outputs[k : k + 64], 256)
                if k == 0:
                    first = verdicts
                else:
                    first.attempts += verdicts.attempts
            best = min(best, time.perf_counter() - start)
        flagged = Counter(a["reason"] for a in first.attempts)
        out[tgt] = {"seconds_per_1000": best / len(chunks) * 1000,
                    "flagged": sum(flagged.values()), "flagged_by_reason": dict(flagged)}
    return out


def inference_cost(args, src: list[str]) -> dict:
    from pipeline.batching import plan_batches
    from pipeline.config import JobParams, RunSettings
    from pipeline.quality.ladder import decoding

    if args.model:
        model = args.model
    else:
        from models.tiny import build_tiny_model

        model = str(build_tiny_model(Path(tempfile.mkdtemp()) / "tiny"))
    from models import open_translator

    tr = open_translator(model, RunSettings(device=args.device, threads=args.threads))
    tr.load()
    info = tr.describe()
    params = JobParams(model=model, src_lang="eng_Latn", tgt_lang=TARGETS[0], fmt="text",
                       output="/dev/null")
    texts = src[: args.infer]

    class C:
        def __init__(self, idx, n):
            self.idx, self.n_tokens = idx, n

    counts = tr.count_tokens(texts)
    items = [C(i, n) for i, n in enumerate(counts)]
    budget = lambda n: params.output_budget(n, info.max_output_tokens)  # noqa: E731
    plan = plan_batches(items, info.default_batch_tokens, 256, budget)
    tr.translate_batch(texts[:2], "eng_Latn", TARGETS[0], decoding(0, 4, 8))  # warm up
    start = time.perf_counter()
    for batch in plan:
        tr.translate_batch([texts[c.idx] for c in batch], "eng_Latn", TARGETS[0],
                           decoding(0, params.beams, budget(batch[0].n_tokens)))
    seconds = time.perf_counter() - start
    return {"model": info.model, "device": info.device, "sentences": len(texts),
            "seconds_per_1000": seconds / len(texts) * 1000}


def main(argv=None) -> int:
    args = parse_args(argv)
    src, refs = sentences(args.sentences)
    checks = judge_cost(src, refs, args.repeat)
    infer = inference_cost(args, src)
    worst = max(c["seconds_per_1000"] for c in checks.values())
    share = worst / infer["seconds_per_1000"]
    print(f"{len(src)} sentences judged as translations into {', '.join(checks)}")
    for tgt, c in checks.items():
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(c["flagged_by_reason"].items()))
        print(f"  {tgt}: checks {c['seconds_per_1000'] * 1000:7.1f} ms per 1,000 sentences; "
              f"references flagged {c['flagged']} ({reasons or 'none'})")
    print(f"inference ({infer['model']} on {infer['device']}, beams 4, {infer['sentences']} "
          f"sentences): {infer['seconds_per_1000']:.1f} s per 1,000 sentences")
    print(f"checks / inference: {share:.3%} (target under 1%)")
    if args.json:
        print(json.dumps({"checks": checks, "inference": infer, "share": share}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
