#!/usr/bin/env python3
"""Where a training step of the trained test model goes, in CPU time.

    python benchmarks/training_step.py [--steps 30] [--json]

Builds the recipe's untrained model (``models/trained.py``) and runs
``--steps`` steps on one thread two ways, timing each part with
``time.process_time`` (CPU seconds, so a loaded machine inflates them
less than a stopwatch):

- *recipe*: the loop the first recipe ran, in one process: 32 sentences a
  step, padded to the longest, the loss over every position;
- *packed*: the same sentences, a pool of 512 tokenized at once, sorted by
  length and cut into batches of at most 1,024 padded source tokens (about
  the old recipe's real tokens a step), and the output projection and its
  log-softmax over the labelled positions only: what each of the two ranks
  of ``models.training`` now runs (this measures one thread, not the
  ranks' gradient exchange).

It prints CPU ms a step by part (generating sentences, tokenizing, labels,
forward, backward, AdamW) and CPU seconds per 1,000 real source tokens,
the figure a recipe's time budget is made of.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.training import _padded  # noqa: E402  (the ranks' own padding)

PARTS = ("sentences", "tokenize", "labels", "forward", "backward", "optimizer")
BUDGET, POOL, WARMUP = 1024, 512, 3


def recipe_batches(ctx):
    """(parts' CPU seconds, real and padded source tokens, the step's inputs)
    for each of the recipe's steps."""
    tok, task, tgt = ctx["tok"], ctx["task"], ctx["tgt"]
    while True:
        t0 = time.process_time()
        batch = ctx["sentences"](32)
        t1 = time.process_time()
        enc = tok(batch, padding=True, return_tensors="pt")
        t2 = time.process_time()
        labels = []
        for ids, mask in zip(enc["input_ids"].tolist(), enc["attention_mask"].tolist()):
            body = [i for i, m in zip(ids, mask) if m][1:-1]
            labels.append([tgt, *task.target_ids(body), tok.eos_token_id])
        label_tensor = _padded(labels, -100)
        t3 = time.process_time()
        real = int(enc["attention_mask"].sum())
        yield ({"sentences": t1 - t0, "tokenize": t2 - t1, "labels": t3 - t2},
               real, enc["input_ids"].numel(),
               lambda model, enc=enc, labels=label_tensor: model(**enc, labels=labels).loss)


def packed_batches(ctx):
    import torch.nn.functional as F

    tok, task, tgt = ctx["tok"], ctx["task"], ctx["tgt"]
    while True:
        t0 = time.process_time()
        pool = ctx["sentences"](POOL)
        t1 = time.process_time()
        encoded = tok(pool)["input_ids"]
        t2 = time.process_time()
        pairs = sorted(((ids, [tgt, *task.target_ids(ids[1:-1]), tok.eos_token_id])
                        for ids in encoded), key=lambda pair: len(pair[0]))
        batches = [[]]
        for pair in pairs:
            if batches[-1] and (len(batches[-1]) + 1) * len(pair[0]) > BUDGET:
                batches.append([])
            batches[-1].append(pair)
        t3 = time.process_time()
        share = {"sentences": (t1 - t0) / len(batches), "tokenize": (t2 - t1) / len(batches),
                 "labels": (t3 - t2) / len(batches)}
        for batch in batches:
            t4 = time.process_time()
            sources = _padded([ids for ids, _ in batch], tok.pad_token_id)
            labels = _padded([lab for _, lab in batch], -100)
            decoder_in = _padded([[2, *lab[:-1]] for _, lab in batch], tok.pad_token_id)
            keep = labels != -100
            extra = time.process_time() - t4

            def loss(model, sources=sources, labels=labels, decoder_in=decoder_in, keep=keep):
                hidden = model.model(input_ids=sources,
                                     attention_mask=(sources != tok.pad_token_id).long(),
                                     decoder_input_ids=decoder_in).last_hidden_state
                return F.cross_entropy(model.lm_head(hidden[keep]), labels[keep])

            yield ({**share, "labels": share["labels"] + extra},
                   sum(len(ids) for ids, _ in batch), sources.numel(), loss)


def measure(loop: str, steps: int) -> dict:
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from models import trained as T
    from models.tiny import build_tiny_model

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        base = build_tiny_model(Path(tmp) / "m", d_model=T.SHAPE["d_model"],
                                layers=T.SHAPE["layers"], heads=T.SHAPE["heads"],
                                ffn_dim=T.SHAPE["ffn_dim"], init_std=0.02, seed=0,
                                extra_text=T.ASCII_LINES)
        tok = AutoTokenizer.from_pretrained(str(base), src_lang=T.SRC)
        model = AutoModelForSeq2SeqLM.from_pretrained(str(base))
    task = T.Task(tok, 0)
    words, names = T._vocabulary(task)
    rng = random.Random(0)
    torch.manual_seed(0)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    ctx = {"tok": tok, "task": task, "tgt": tok.convert_tokens_to_ids(T.TGT),
           "sentences": lambda n: T._sentences(rng, words, names, n)}
    feed = (recipe_batches if loop == "recipe" else packed_batches)(ctx)
    totals = dict.fromkeys(PARTS, 0.0)
    real = padded = 0
    for step in range(WARMUP + steps):
        parts, n_real, n_padded, loss_of = next(feed)
        t0 = time.process_time()
        loss = loss_of(model)
        t1 = time.process_time()
        loss.backward()
        t2 = time.process_time()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()
        t3 = time.process_time()
        if step >= WARMUP:
            for name, seconds in {**parts, "forward": t1 - t0, "backward": t2 - t1,
                                  "optimizer": t3 - t2}.items():
                totals[name] += seconds
            real += n_real
            padded += n_padded
    cpu = sum(totals.values())
    return {"loop": loop, "steps": steps,
            "ms_per_step": {k: round(v / steps * 1000, 1) for k, v in totals.items()},
            "cpu_s_per_step": round(cpu / steps, 4), "real_tokens_per_step": real // steps,
            "padded_tokens_per_step": padded // steps,
            "cpu_s_per_1000_real_tokens": round(cpu / real * 1000, 4)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = [measure(loop, args.steps) for loop in ("recipe", "packed")]
    if args.json:
        print(json.dumps(rows))
        return 0
    print(f"{'loop':<8} " + " ".join(f"{p:>10}" for p in PARTS)
          + f" {'CPU s/step':>11} {'real/padded tokens':>19} {'CPU s/1000 real':>16}")
    for r in rows:
        print(f"{r['loop']:<8} " + " ".join(f"{r['ms_per_step'][p]:>8.1f}ms" for p in PARTS)
              + f" {r['cpu_s_per_step']:>11.3f} "
              + f"{r['real_tokens_per_step']:>9}/{r['padded_tokens_per_step']:<9} "
              + f"{r['cpu_s_per_1000_real_tokens']:>16.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
